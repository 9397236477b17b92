// Turtlemen studio ("My videos"): deleting without leaving the page (DELETE /api/v1/videos/{id},
// after a confirmation), and rows that follow their video's processing until it is ready or
// failed. Without this file the delete forms post with their CSRF token and the page reloads.
(() => {
  'use strict';
  const list = document.getElementById('studio-list');
  if (!list) return;

  const label = (v) =>
    v.state === 'processing' ? `Processing ${v.progress}%` : v.state === 'ready' ? 'Ready' : v.state === 'uploading' ? 'Uploading' : 'Failed';

  list.addEventListener('submit', async (e) => {
    const form = e.target.closest('.delete-form');
    if (!form) return;
    e.preventDefault();
    if (!window.confirm(`Delete “${form.dataset.title}”? This cannot be undone.`)) return;
    const row = form.closest('.studio-row');
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const res = await fetch(`/api/v1/videos/${row.dataset.videoId}`, {
        method: 'DELETE',
        headers: { Accept: 'application/json' },
      });
      if (res.ok || res.status === 404) {
        row.remove();
        const notice = document.createElement('p');
        notice.className = 'notice';
        notice.setAttribute('role', 'status');
        notice.textContent = `Deleted “${form.dataset.title}”.`;
        list.before(notice);
        return;
      }
      window.alert(`Could not delete: ${(await res.json().catch(() => ({}))).message || res.status}`);
    } catch {
      window.alert('Could not delete: the server could not be reached.');
    }
    button.disabled = false;
  });

  const busy = () => [...list.querySelectorAll('.studio-row')].some((r) => ['uploading', 'processing'].includes(r.dataset.state));
  const poll = async () => {
    if (!busy()) return;
    try {
      const res = await fetch('/api/v1/me/videos', { headers: { Accept: 'application/json' } });
      if (res.ok) {
        const { videos } = await res.json();
        for (const v of videos) {
          const row = list.querySelector(`.studio-row[data-video-id="${v.id}"]`);
          if (!row || row.dataset.state === v.state && v.state !== 'processing') continue;
          row.dataset.state = v.state;
          row.querySelector('[data-role="state"]').textContent = label(v);
          if (v.state === 'failed' && v.failure_reason && !row.querySelector('[data-role="failure"]')) {
            const p = document.createElement('p');
            p.className = 'field-error';
            p.dataset.role = 'failure';
            p.textContent = v.failure_reason;
            row.querySelector('.studio-info').append(p);
          }
        }
      }
    } catch {
      // Ask again on the next round.
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
})();
