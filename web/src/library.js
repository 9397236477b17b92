// Turtlemen library: enhances the watch page's like / dislike and "Watch later" forms (sent by
// fetch, the buttons' aria-pressed kept in step), starts the player at the resume position,
// reports the position to the watch history every 10 s and when the page is hidden, goes to
// the playlist's next video on `ended`, and lets a playlist's owner drag items to reorder them.
// Without this file every control is a form that posts and comes back.
(() => {
  'use strict';
  const json = (method, url, body) =>
    fetch(url, {
      method,
      credentials: 'same-origin',
      keepalive: true,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });

  // --- watch page -----------------------------------------------------------------------------
  const player = document.getElementById('player');
  const video = document.getElementById('video');
  const id = player && player.dataset.videoId;

  const ratingForm = document.getElementById('rating-form');
  if (ratingForm && id) {
    ratingForm.addEventListener('submit', async (e) => {
      const button = e.submitter;
      if (!button) return;
      e.preventDefault();
      const res = await json('PUT', `/api/v1/videos/${id}/rating`, { rating: button.value }).catch(() => null);
      if (!res || !res.ok) {
        ratingForm.submit();
        return;
      }
      const state = await res.json();
      document.getElementById('like-count').textContent = state.likes.toLocaleString('en');
      document.getElementById('dislike-count').textContent = state.dislikes.toLocaleString('en');
      for (const b of ratingForm.querySelectorAll('button[data-rating]')) {
        const on = b.dataset.rating === state.rating;
        b.setAttribute('aria-pressed', String(on));
        b.value = on ? 'none' : b.dataset.rating;
      }
    });
  }

  // Watch later and "Save to playlist": the form itself, posted by fetch.
  const postQuietly = (form, submitter) => {
    const body = new URLSearchParams(new FormData(form));
    if (submitter && submitter.name) body.set(submitter.name, submitter.value);
    return fetch(form.action, { method: 'POST', credentials: 'same-origin', body, redirect: 'manual' });
  };
  const laterForm = document.getElementById('watch-later-form');
  if (laterForm) {
    laterForm.addEventListener('submit', async (e) => {
      const button = e.submitter || laterForm.querySelector('button');
      e.preventDefault();
      const res = await postQuietly(laterForm, button).catch(() => null);
      if (!res || (res.status >= 400 && res.type !== 'opaqueredirect')) return;
      const added = button.value === 'add';
      button.setAttribute('aria-pressed', String(added));
      button.value = added ? 'remove' : 'add';
    });
  }
  const saveForm = document.getElementById('save-form');
  if (saveForm) {
    saveForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const select = saveForm.querySelector('select');
      const option = select.selectedOptions[0];
      const res = await postQuietly(saveForm, null).catch(() => null);
      if (!res || (res.status >= 400 && res.type !== 'opaqueredirect')) return;
      if (option) {
        option.disabled = true;
        option.textContent += ' (saved)';
      }
      const menu = saveForm.closest('details');
      if (menu) menu.open = false;
    });
  }

  if (player && video) {
    const start = Number(player.dataset.start || 0);
    const seekToStart = () => {
      if (start > 0 && video.currentTime < 1) video.currentTime = start;
    };
    if (video.readyState >= 1) seekToStart();
    else video.addEventListener('loadedmetadata', seekToStart, { once: true });

    if (player.dataset.history) {
      let last = -1;
      const report = () => {
        const at = Math.floor(video.currentTime || 0);
        if (at === last) return;
        last = at;
        json('PUT', `/api/v1/me/history/${id}`, { position_secs: at }).catch(() => {});
      };
      setInterval(() => {
        if (!video.paused) report();
      }, 10000);
      video.addEventListener('pause', report);
      window.addEventListener('pagehide', report);
      document.addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'hidden') report();
      });
    }

    const next = player.dataset.next;
    if (next && next.startsWith('/') && !next.startsWith('//')) {
      video.addEventListener('ended', () => {
        window.location.assign(next);
      });
    }
  }

  // --- playlist page: drag to reorder -------------------------------------------------------
  const list = document.getElementById('playlist-items');
  const playlist = list && list.dataset.playlist;
  if (list && playlist) {
    let dragged = null;
    for (const item of list.querySelectorAll('li[data-item-id]')) {
      item.draggable = true;
      item.addEventListener('dragstart', (e) => {
        dragged = item;
        item.classList.add('dragging');
        e.dataTransfer.effectAllowed = 'move';
        e.dataTransfer.setData('text/plain', item.dataset.itemId);
      });
      item.addEventListener('dragend', () => {
        item.classList.remove('dragging');
        dragged = null;
      });
      item.addEventListener('dragover', (e) => {
        if (dragged && dragged !== item) e.preventDefault();
      });
      item.addEventListener('drop', async (e) => {
        e.preventDefault();
        if (!dragged || dragged === item) return;
        const moving = dragged;
        const target = Number(item.dataset.position);
        const res = await json('PATCH', `/api/v1/playlists/${playlist}/items/${moving.dataset.itemId}`, {
          position: target,
        }).catch(() => null);
        if (!res || !res.ok) return;
        if (Number(moving.dataset.position) < target) item.after(moving);
        else item.before(moving);
        const base = Number(list.getAttribute('start') || 1) - 1;
        list.querySelectorAll('li[data-item-id]').forEach((li, i) => {
          li.dataset.position = String(base + i);
        });
      });
    }
  }
})();
