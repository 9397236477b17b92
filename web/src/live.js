// The live page: hls.js in low-latency mode on the live's playlist, the state and the viewer
// count followed by polling the API every 3 s (the player attaches when the live starts, and the
// page says when it ends and links the replay). The studio's "Go live" page: copy buttons.
(() => {
  'use strict';
  for (const button of document.querySelectorAll('button.copy[data-copy]')) {
    button.addEventListener('click', async () => {
      const field = document.getElementById(button.dataset.copy);
      if (!field) return;
      field.select();
      try { await navigator.clipboard.writeText(field.value); button.textContent = 'Copied'; }
      catch { document.execCommand('copy'); button.textContent = 'Copied'; }
    });
  }

  const player = document.getElementById('live-player');
  if (!player) return;
  const video = document.getElementById('video');
  const state = document.getElementById('live-state');
  const viewers = document.getElementById('live-viewers');
  let hls = null;
  let attached = null;

  function attach(src) {
    // The query (this player's viewer nonce) differs at every poll: only a new signed path
    // (the token's window moved on) needs a new player.
    const path = src.split('?')[0];
    if (!video || attached === path) return;
    attached = path;
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      if (hls) hls.destroy();
      hls = new Hls({ lowLatencyMode: true, enableWorker: false, backBufferLength: 30 });
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      });
      hls.loadSource(src);
      hls.attachMedia(video);
      window.turtlemenLive = hls;
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = src;
    }
    video.play().catch(() => {});
  }

  function show(live) {
    player.dataset.state = live.state;
    if (viewers) viewers.textContent = live.state === 'live' && live.viewers != null ? live.viewers + ' watching' : '';
    const label = live.state === 'live' ? 'Live now'
      : live.state === 'ended' ? 'This live has ended.' : 'Waiting for the streamer to start…';
    state.textContent = '';
    const badge = document.createElement('span');
    badge.className = 'live-badge';
    badge.dataset.state = live.state;
    badge.textContent = label;
    state.append(badge);
    if (live.replay_video_id) {
      const a = document.createElement('a');
      a.id = 'replay-link';
      a.href = '/videos/' + encodeURIComponent(live.replay_video_id);
      a.textContent = 'Watch the replay';
      state.append(' ', a);
    }
  }

  async function poll() {
    try {
      const res = await fetch('/api/v1/lives/' + encodeURIComponent(player.dataset.liveId), {
        headers: { accept: 'application/json' }, credentials: 'same-origin',
      });
      if (res.ok) {
        const live = await res.json();
        show(live);
        if (live.state === 'live' && live.hls_url) attach(live.hls_url);
        if (live.state === 'ended' && live.replay_video_id) return;
      }
    } catch { /* try again */ }
    setTimeout(poll, 3000);
  }

  if (player.dataset.hls) attach(player.dataset.hls);
  setTimeout(poll, player.dataset.state === 'ended' ? 0 : 3000);
})();
