// Turtlemen upload page: resumable uploads with tus-js-client (tus 1.0.0 at /api/v1/uploads).
// Drag and drop or choose a file; the bytes go up with a progress bar that can pause and
// resume (also after a page reload: choosing the same file again picks up where it stopped).
// The details form is saved while the bytes go up (PATCH /api/v1/videos/{id}, as soon as the
// creation answer names the video), then processing is followed until the video can be watched.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const input = $('file');
  const zone = $('drop-zone');
  const form = $('metadata');
  if (!input || !zone || !form) return;

  const status = $('upload-status');
  const bar = $('upload-progress');
  const label = $('upload-progress-label');
  const fileLabel = $('upload-file');
  const pauseButton = $('pause');
  const resumeButton = $('resume');
  const saveStatus = $('save-status');
  const processing = $('processing');
  const processingBar = $('processing-progress');
  const processingLabel = $('processing-label');
  const watchLink = $('watch-link');
  const VIDEO_KEY = 'turtlemen.upload.video:';

  // tus-js-client is fetched when the first file is chosen, so the page itself stays small.
  let tusLoading = null;
  const loadTus = () =>
    (tusLoading ||= new Promise((resolve, reject) => {
      if (window.tus) return resolve(window.tus);
      const script = document.createElement('script');
      script.src = zone.dataset.tusSrc;
      script.onload = () => resolve(window.tus);
      script.onerror = () => {
        tusLoading = null;
        reject(new Error('The uploader could not be loaded; check the connection and choose the file again.'));
      };
      document.head.append(script);
    }));

  let upload = null;
  let videoId = null;
  let dirty = false; // the form changed since it was last sent
  let saveTimer = 0;

  const size = (n) => {
    const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i += 1;
    }
    return i === 0 ? `${n} bytes` : `${n.toFixed(1)} ${units[i]}`;
  };

  const values = () => {
    const data = new FormData(form);
    const text = (k) => String(data.get(k) || '').trim();
    return {
      title: text('title'),
      description: text('description'),
      tags: text('tags').split(',').map((t) => t.trim()).filter(Boolean),
      category: text('category') || null,
      language: text('language') || null,
      licence: text('licence') || null,
      privacy: text('privacy') || 'public',
    };
  };

  const apiError = async (res) => {
    try {
      return (await res.json()).message || `Error ${res.status}`;
    } catch {
      return `Error ${res.status}`;
    }
  };

  async function save() {
    clearTimeout(saveTimer);
    if (!videoId) {
      dirty = true;
      saveStatus.textContent = 'Your details will be saved as soon as the upload starts.';
      return;
    }
    const body = values();
    if (!body.title) {
      saveStatus.textContent = 'A title is needed before the details can be saved.';
      return;
    }
    dirty = false;
    saveStatus.textContent = 'Saving…';
    try {
      const res = await fetch(`/api/v1/videos/${videoId}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
      });
      saveStatus.textContent = res.ok ? 'Details saved.' : `Not saved: ${await apiError(res)}`;
      if (!res.ok) dirty = true;
    } catch {
      dirty = true;
      saveStatus.textContent = 'Not saved: the server could not be reached. Trying again when you change something.';
    }
  }

  form.addEventListener('input', () => {
    dirty = true;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, 600);
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    save();
  });

  function knowVideo(id) {
    if (!id || videoId) return;
    videoId = id;
    if (upload?.url) localStorage.setItem(VIDEO_KEY + upload.url, id);
    if (dirty) save();
  }

  function showProgress(sent, total) {
    const pct = total ? Math.floor((sent / total) * 100) : 0;
    bar.value = pct;
    label.textContent = `${size(sent)} of ${size(total)} (${pct}%)`;
  }

  function setPaused(paused) {
    pauseButton.hidden = paused;
    resumeButton.hidden = !paused;
  }

  async function follow() {
    processing.hidden = false;
    for (;;) {
      let v = null;
      try {
        const res = await fetch(`/api/v1/videos/${videoId}`, { headers: { Accept: 'application/json' } });
        if (res.ok) v = await res.json();
      } catch {
        // The server is away for a moment: ask again.
      }
      if (v) {
        processingBar.value = v.state === 'ready' ? 100 : v.progress;
        if (v.state === 'failed') {
          processingLabel.textContent = `Processing failed: ${v.failure_reason || 'the file could not be converted.'}`;
          return;
        }
        processingLabel.textContent =
          v.state === 'ready'
            ? 'Your video is ready.'
            : `Processing: ${v.progress}%${v.playable ? ' — it can already be watched.' : ''}`;
        if (v.playable) {
          watchLink.href = v.watch_url;
          watchLink.hidden = false;
        }
        if (v.state === 'ready') return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  async function begin(file) {
    if (upload) upload.abort();
    let tus;
    try {
      tus = await loadTus();
    } catch (e) {
      status.hidden = false;
      label.textContent = e.message;
      return;
    }
    videoId = null;
    const titleInput = form.elements.namedItem('title');
    if (!titleInput.value.trim()) {
      titleInput.value = file.name.replace(/\.[^.]*$/, '').slice(0, 100) || file.name.slice(0, 100);
    }
    const meta = values();
    const metadata = { filename: file.name, title: meta.title, privacy: meta.privacy };
    if (meta.description) metadata.description = meta.description;
    if (meta.tags.length) metadata.tags = meta.tags.join(',');
    for (const k of ['category', 'language', 'licence']) if (meta[k]) metadata[k] = meta[k];
    const channel = form.elements.namedItem('channel');
    if (channel && channel.value) metadata.channel = channel.value;
    dirty = false;

    status.hidden = false;
    processing.hidden = true;
    watchLink.hidden = true;
    fileLabel.textContent = `${file.name} (${size(file.size)})`;
    showProgress(0, file.size);
    setPaused(false);

    upload = new tus.Upload(file, {
      endpoint: '/api/v1/uploads',
      chunkSize: Number(zone.dataset.chunkSize) || 8 * 1024 * 1024,
      // Long enough to outlast the server's lease of a chunk whose connection died unnoticed
      // (423 until it lapses, at most a minute).
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
      metadata,
      removeFingerprintOnSuccess: true,
      onAfterResponse(req, res) {
        if (req.getMethod() === 'POST') knowVideo(res.getHeader('Video-Id'));
      },
      onUploadUrlAvailable() {
        if (videoId) localStorage.setItem(VIDEO_KEY + upload.url, videoId);
      },
      onProgress: showProgress,
      onError(err) {
        setPaused(true);
        const message = err?.originalResponse?.getBody?.();
        let reason = String(err?.message || err);
        try {
          reason = JSON.parse(message).message || reason;
        } catch {
          // Not our JSON: keep the client's own message.
        }
        label.textContent = `The upload stopped: ${reason} Press Resume to try again.`;
      },
      onSuccess() {
        localStorage.removeItem(VIDEO_KEY + upload.url);
        pauseButton.hidden = true;
        resumeButton.hidden = true;
        label.textContent = `Uploaded ${size(file.size)}.`;
        if (dirty) save();
        follow();
      },
    });
    const previous = await upload.findPreviousUploads();
    if (previous.length) {
      const last = previous[previous.length - 1];
      upload.resumeFromPreviousUpload(last);
      knowVideo(localStorage.getItem(VIDEO_KEY + last.uploadUrl));
      label.textContent = 'Resuming where the last upload of this file stopped…';
    }
    upload.start();
  }

  pauseButton.addEventListener('click', () => {
    if (!upload) return;
    upload.abort();
    setPaused(true);
    label.textContent = `Paused at ${bar.value}%.`;
    resumeButton.focus();
  });
  resumeButton.addEventListener('click', () => {
    if (!upload) return;
    setPaused(false);
    upload.start();
    pauseButton.focus();
  });

  input.addEventListener('change', () => {
    if (input.files?.[0]) begin(input.files[0]);
  });
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    zone.addEventListener(type, () => zone.classList.remove('dragging'));
  }
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (file) begin(file);
  });

  // An upload left unfinished (a reload, a closed tab): say which file to choose again. These
  // are tus-js-client's resumption records (`tus::<fingerprint>::<id>` in localStorage).
  try {
    const names = new Set();
    for (let i = 0; i < localStorage.length; i += 1) {
      const key = localStorage.key(i);
      if (!key?.startsWith('tus::')) continue;
      const name = JSON.parse(localStorage.getItem(key))?.metadata?.filename;
      if (name) names.add(name);
    }
    if (names.size) {
      const hint = $('resume-hint');
      hint.textContent = `Unfinished upload: choose ${[...names].join(', ')} again to continue where it stopped.`;
      hint.hidden = false;
    }
  } catch {
    // No storage, or a record we do not understand: no hint.
  }
})();
