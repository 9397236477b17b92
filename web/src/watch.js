// Turtlemen watch page: the player. hls.js plays the HLS master playlist (native HLS where the
// browser has it and hls.js cannot run); our controls add a quality menu (auto + each
// rendition), a speed menu, seek thumbnails from the storyboard (WebVTT cues pointing into a
// sprite, `sprite.jpg#xywh=x,y,w,h`) and keyboard shortcuts: space/k play-pause, j/l and the
// arrows seek, f fullscreen, m mute, > and < change speed. While the video is processing the
// page follows its progress and plays what is there. After 3 s of playback it reports one view.
// Without this file the page still has a <video> with the HLS source.
(() => {
  'use strict';
  const player = document.getElementById('player');
  const video = document.getElementById('video');
  if (!player || !video) return;

  const id = player.dataset.videoId;
  const SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
  let hls = null;
  let source = null;

  const clock = (t) => {
    if (!Number.isFinite(t) || t < 0) t = 0;
    const s = Math.floor(t % 60);
    const m = Math.floor(t / 60) % 60;
    const h = Math.floor(t / 3600);
    const ss = String(s).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  };
  const el = (tag, attrs = {}, text = '') => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  };

  // --- controls -----------------------------------------------------------------------------
  const controls = el('div', { class: 'controls', role: 'group', 'aria-label': 'Player controls' });
  const play = el('button', { type: 'button', class: 'control', 'aria-label': 'Play' }, '▶');
  const time = el('span', { class: 'time', 'aria-live': 'off' }, '0:00 / 0:00');
  const seekWrap = el('div', { class: 'seek' });
  const seek = el('input', { type: 'range', min: '0', max: '0', step: '0.1', value: '0', 'aria-label': 'Seek' });
  const preview = el('div', { class: 'seek-preview', hidden: '' });
  const previewImage = el('div', { class: 'seek-preview-image' });
  const previewTime = el('span', { class: 'seek-preview-time' });
  preview.append(previewImage, previewTime);
  seekWrap.append(seek, preview);
  const mute = el('button', { type: 'button', class: 'control' }, 'Mute');
  const qualityLabel = el('label', { class: 'control-label' }, 'Quality ');
  const quality = el('select', { id: 'quality', 'aria-label': 'Quality', disabled: '' });
  quality.append(el('option', { value: 'auto' }, 'Auto'));
  qualityLabel.append(quality);
  const speedLabel = el('label', { class: 'control-label' }, 'Speed ');
  const speed = el('select', { id: 'speed', 'aria-label': 'Speed' });
  for (const s of SPEEDS) {
    const o = el('option', { value: String(s) }, s === 1 ? 'Normal' : `${s}×`);
    if (s === 1) o.selected = true;
    speed.append(o);
  }
  speedLabel.append(speed);
  const full = el('button', { type: 'button', class: 'control' }, 'Full screen');
  controls.append(play, time, seekWrap, mute, qualityLabel, speedLabel, full);
  video.controls = false;
  player.classList.add('enhanced');
  player.append(controls);

  const duration = () => {
    if (Number.isFinite(video.duration)) return video.duration;
    const r = video.seekable;
    return r.length ? r.end(r.length - 1) : 0;
  };
  const togglePlay = () => (video.paused ? video.play().catch(() => {}) : video.pause());
  const seekBy = (d) => {
    video.currentTime = Math.max(0, Math.min(duration() || 0, video.currentTime + d));
  };
  const setSpeed = (s) => {
    video.playbackRate = s;
    speed.value = String(s);
  };
  const stepSpeed = (dir) => {
    const i = SPEEDS.indexOf(video.playbackRate);
    const next = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (i < 0 ? 3 : i) + dir))];
    setSpeed(next);
  };
  const toggleFull = () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else player.requestFullscreen?.().catch(() => {});
  };

  play.addEventListener('click', togglePlay);
  video.addEventListener('click', togglePlay);
  mute.addEventListener('click', () => (video.muted = !video.muted));
  full.addEventListener('click', toggleFull);
  speed.addEventListener('change', () => setSpeed(Number(speed.value)));
  seek.addEventListener('input', () => (video.currentTime = Number(seek.value)));

  const refresh = () => {
    const d = duration();
    seek.max = String(d);
    if (document.activeElement !== seek) seek.value = String(video.currentTime);
    time.textContent = `${clock(video.currentTime)} / ${clock(d)}`;
  };
  for (const e of ['timeupdate', 'durationchange', 'loadedmetadata', 'progress']) video.addEventListener(e, refresh);
  video.addEventListener('play', () => {
    play.textContent = '❚❚';
    play.setAttribute('aria-label', 'Pause');
  });
  video.addEventListener('pause', () => {
    play.textContent = '▶';
    play.setAttribute('aria-label', 'Play');
  });
  video.addEventListener('volumechange', () => {
    mute.textContent = video.muted ? 'Unmute' : 'Mute';
  });
  video.addEventListener('ratechange', () => (speed.value = String(video.playbackRate)));

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && t.closest('input, textarea, select, [contenteditable]')) return;
    if ((e.key === ' ' || e.key === 'Enter') && t instanceof HTMLElement && t.closest('button, a')) return;
    const actions = {
      ' ': togglePlay,
      k: togglePlay,
      j: () => seekBy(-10),
      l: () => seekBy(10),
      ArrowLeft: () => seekBy(-5),
      ArrowRight: () => seekBy(5),
      f: toggleFull,
      m: () => (video.muted = !video.muted),
      '>': () => stepSpeed(1),
      '<': () => stepSpeed(-1),
    };
    const action = actions[e.key];
    if (!action) return;
    e.preventDefault();
    action();
  });

  // --- quality --------------------------------------------------------------------------------
  const showLevel = (index) => {
    const level = hls?.levels?.[index];
    if (level) player.dataset.levelHeight = String(level.height);
  };
  quality.addEventListener('change', () => {
    if (!hls) return;
    // currentLevel switches now (flushing the buffer ahead); -1 lets hls.js choose again.
    hls.currentLevel = quality.value === 'auto' ? -1 : Number(quality.value);
  });

  // --- source ---------------------------------------------------------------------------------
  function attach(url) {
    if (source === url) return;
    source = url;
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      hls?.destroy();
      // No blob worker: the page's Content-Security-Policy allows scripts from this origin only.
      hls = new Hls({ enableWorker: false });
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        while (quality.options.length > 1) quality.remove(1);
        data.levels
          .map((level, index) => ({ level, index }))
          .sort((a, b) => b.level.height - a.level.height)
          .forEach(({ level, index }) => {
            quality.append(el('option', { value: String(index) }, level.height ? `${level.height}p` : `Level ${index + 1}`));
          });
        quality.disabled = data.levels.length < 2;
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => showLevel(data.level));
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = url;
    }
  }
  if (player.dataset.hls) attach(player.dataset.hls);

  // --- storyboard -----------------------------------------------------------------------------
  let cues = null;
  const parseTime = (s) => s.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
  async function loadStoryboard() {
    if (cues || !player.dataset.storyboard) return cues;
    cues = [];
    try {
      const base = new URL(player.dataset.storyboard, location.href);
      const text = await (await fetch(base)).text();
      for (const block of text.split(/\r?\n\r?\n/)) {
        const lines = block.split(/\r?\n/).filter(Boolean);
        const at = lines.findIndex((l) => l.includes('-->'));
        if (at < 0 || !lines[at + 1]) continue;
        const [from, to] = lines[at].split('-->').map((s) => parseTime(s.trim().split(' ')[0]));
        const target = new URL(lines[at + 1].trim(), base);
        const xywh = /#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(target.hash);
        if (!xywh) continue;
        target.hash = '';
        const [x, y, w, h] = xywh.slice(1).map(Number);
        cues.push({ from, to, src: target.href, x, y, w, h });
      }
    } catch {
      // No thumbnails: the time alone is shown.
    }
    return cues;
  }
  seek.addEventListener('mousemove', async (e) => {
    const rect = seek.getBoundingClientRect();
    const ratio = Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width));
    const t = ratio * duration();
    previewTime.textContent = clock(t);
    const list = await loadStoryboard();
    const cue = list?.find((c) => t >= c.from && t < c.to) || list?.[list.length - 1];
    if (cue) {
      Object.assign(previewImage.style, {
        width: `${cue.w}px`,
        height: `${cue.h}px`,
        backgroundImage: `url("${cue.src}")`,
        backgroundPosition: `-${cue.x}px -${cue.y}px`,
      });
      previewImage.hidden = false;
    } else {
      previewImage.hidden = true;
    }
    preview.style.left = `${ratio * 100}%`;
    preview.hidden = false;
  });
  seek.addEventListener('mouseleave', () => (preview.hidden = true));

  // --- view beacon ----------------------------------------------------------------------------
  let played = 0;
  let last = null;
  let counted = false;
  video.addEventListener('timeupdate', () => {
    const now = video.currentTime;
    if (last !== null && !video.paused && now > last && now - last < 1.5) played += now - last;
    last = now;
    if (!counted && played >= 3) {
      counted = true;
      fetch(`/api/v1/videos/${id}/views`, { method: 'POST', headers: { Accept: 'application/json' } }).catch(() => {});
    }
  });
  video.addEventListener('seeking', () => (last = null));

  // --- processing -----------------------------------------------------------------------------
  const state = player.dataset.state;
  if (state === 'processing' || state === 'uploading') {
    const bar = document.getElementById('video-progress');
    const text = document.getElementById('video-status-text');
    const poll = async () => {
      let v = null;
      try {
        const res = await fetch(`/api/v1/videos/${id}`, { headers: { Accept: 'application/json' } });
        if (res.ok) v = await res.json();
      } catch {
        // Ask again on the next round.
      }
      if (v) {
        player.dataset.state = v.state;
        if (v.poster_url && !video.getAttribute('poster')) video.poster = v.poster_url;
        if (v.storyboard_url) player.dataset.storyboard = v.storyboard_url;
        if (v.hls_url && !player.dataset.recording) attach(v.hls_url);
        // A live's replay plays the live's recording until the replay is ready, then the
        // ladder, from where the viewer was.
        if (v.hls_url && player.dataset.recording && v.state === 'ready') {
          const at = video.currentTime;
          delete player.dataset.recording;
          attach(v.hls_url);
          if (at > 0) video.addEventListener('loadedmetadata', () => (video.currentTime = at), { once: true });
        }
        if (bar) bar.value = v.state === 'ready' ? 100 : v.progress;
        if (text) {
          text.textContent =
            v.state === 'ready'
              ? 'Processing finished.'
              : v.state === 'failed'
                ? `Processing failed: ${v.failure_reason || 'the file could not be converted.'}`
                : player.dataset.recording
                  ? `Processing: ${v.progress}% — playing the live's recording until the replay is ready.`
                  : `Processing: ${v.progress}%${v.hls_url ? ' — you can watch what is ready so far.' : ''}`;
        }
        if (v.state === 'ready' || v.state === 'failed') return;
      }
      setTimeout(poll, 2000);
    };
    setTimeout(poll, 2000);
  }
  refresh();
})();
