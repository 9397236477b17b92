// The live chat. On a live's page (#live-chat): a WebSocket to /api/v1/lives/{id}/chat (the
// protocol is in docs/live-chat.md) — the latest messages, new ones as they come, a form for
// those who may post, Delete and Time out for the streamer and moderators; it reconnects after a
// drop. On a replay's watch page (#replay-chat): the kept chat fetched by stream time and shown
// as the video's currentTime reaches each message. Text is always set with textContent: a
// message is never markup.
(() => {
  'use strict';

  function messageItem(m, moderate, send) {
    const li = document.createElement('li');
    li.className = 'chat-message';
    li.dataset.id = m.id;
    const who = document.createElement('b');
    who.className = 'chat-author';
    who.textContent = m.author.display_name || m.author.username;
    const text = document.createElement('span');
    text.className = 'chat-text';
    text.textContent = m.text;
    li.append(who, ' ', text);
    if (moderate && send) {
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'link chat-delete';
      del.textContent = 'Delete';
      del.addEventListener('click', () => send({ type: 'delete', id: m.id }));
      const mute = document.createElement('button');
      mute.type = 'button';
      mute.className = 'link chat-timeout';
      mute.textContent = 'Time out 5 min';
      mute.addEventListener('click', () => send({ type: 'timeout', user_id: m.author.id, seconds: 300 }));
      li.append(' ', del, ' ', mute);
    }
    return li;
  }

  const live = document.getElementById('live-chat');
  if (live) {
    const list = document.getElementById('chat-messages');
    const status = document.getElementById('chat-status');
    const form = document.getElementById('chat-form');
    const input = document.getElementById('chat-text');
    let socket = null;
    let moderate = false;
    let retry = 1000;
    const send = (frame) => { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame)); };
    const add = (m) => {
      if (list.querySelector('[data-id="' + CSS.escape(m.id) + '"]')) return;
      list.append(messageItem(m, moderate, send));
      while (list.children.length > 200) list.firstElementChild.remove();
      list.scrollTop = list.scrollHeight;
    };

    function connect() {
      const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host
        + '/api/v1/lives/' + encodeURIComponent(live.dataset.liveId) + '/chat';
      socket = new WebSocket(url);
      socket.addEventListener('open', () => { retry = 1000; });
      socket.addEventListener('message', (e) => {
        let ev;
        try { ev = JSON.parse(e.data); } catch { return; }
        if (ev.type === 'hello') {
          moderate = ev.can_moderate;
          list.textContent = '';
          ev.messages.forEach(add);
          form.hidden = !ev.can_post;
          if (input) input.maxLength = ev.max_chars;
          status.textContent = ev.can_post ? '' : 'Sign in to chat.';
          live.dataset.ready = '1';
        } else if (ev.type === 'message') {
          add(ev.message);
        } else if (ev.type === 'deleted') {
          const li = list.querySelector('[data-id="' + CSS.escape(ev.id) + '"]');
          if (li) li.remove();
        } else if (ev.type === 'error') {
          status.textContent = ev.message;
        }
      });
      socket.addEventListener('close', (e) => {
        live.dataset.ready = '';
        if (e.code === 1008) { status.textContent = e.reason === 'flood' ? 'Disconnected: too many messages.' : 'Disconnected.'; return; }
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      });
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      status.textContent = '';
      send({ type: 'post', text });
      input.value = '';
    });
    connect();
  }

  const replay = document.getElementById('replay-chat');
  const video = document.getElementById('video');
  if (replay && video) {
    const list = document.getElementById('replay-chat-messages');
    const base = '/api/v1/lives/' + encodeURIComponent(replay.dataset.liveId) + '/chat/messages';
    let pending = [];
    let cursor = null;
    let done = false;
    let loading = null;
    let generation = 0;

    async function load(query) {
      const mine = generation;
      const res = await fetch(base + query, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (!res.ok || mine !== generation) return;
      const page = await res.json();
      pending = pending.concat(page.messages);
      cursor = page.next_cursor;
      done = !cursor;
    }

    function more() {
      if (loading || done) return;
      loading = load('?cursor=' + encodeURIComponent(cursor)).catch(() => {}).finally(() => { loading = null; tick(); });
    }

    function tick() {
      const now = video.currentTime * 1000;
      while (pending.length && pending[0].stream_ms <= now) list.append(messageItem(pending.shift(), false, null));
      while (list.children.length > 200) list.firstElementChild.remove();
      list.scrollTop = list.scrollHeight;
      if (pending.length < 20 && cursor) more();
    }

    function restart() {
      generation += 1;
      pending = [];
      cursor = null;
      done = false;
      list.textContent = '';
      const from = Math.max(0, Math.floor(video.currentTime * 1000) - 30000);
      loading = load('?from_ms=' + from).catch(() => {}).finally(() => { loading = null; tick(); });
    }

    video.addEventListener('timeupdate', tick);
    video.addEventListener('seeked', restart);
    restart();
  }
})();
