// Turtlemen comments: the comment forms post without a reload (the answer page's comments
// replace the section's), "Show N replies" unfolds the thread in place, "More comments" appends
// the next page. Without this file every form posts and the page reloads, "Show N replies" opens
// the thread's page and "More comments" the next page.
(() => {
  'use strict';
  const section = document.getElementById('comments');
  if (!section) return;

  const fetchPage = async (url, init) => {
    const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' }, ...init });
    const html = await res.text();
    return { res, doc: new DOMParser().parseFromString(html, 'text/html') };
  };

  const say = (text) => {
    let status = section.querySelector('.comments-status');
    if (!status) {
      status = document.createElement('p');
      status.className = 'notice comments-status';
      status.setAttribute('role', 'status');
      section.querySelector('h1, h2')?.after(status);
    }
    status.textContent = text;
  };

  section.addEventListener('submit', async (e) => {
    const form = e.target.closest('form[data-comment-form]');
    if (!form) return;
    e.preventDefault();
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      const { res, doc } = await fetchPage(form.action, {
        method: 'POST',
        body: new URLSearchParams(new FormData(form)),
      });
      if (!res.ok) {
        const message = doc.querySelector('main p')?.textContent || 'The comment could not be saved.';
        say(message);
        return;
      }
      const fresh = doc.getElementById('comments');
      if (fresh) {
        section.replaceChildren(...fresh.childNodes);
        const anchor = new URL(res.url).hash;
        const target = anchor ? document.getElementById(anchor.slice(1)) : null;
        if (target) {
          target.scrollIntoView({ block: 'center' });
          target.classList.add('just-posted');
        }
      } else {
        window.location.assign(res.url);
      }
    } catch {
      say('The network failed; try again.');
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  });

  section.addEventListener('click', async (e) => {
    const show = e.target.closest('a.show-replies');
    const more = e.target.closest('a[data-load-more]');
    if (show) {
      e.preventDefault();
      const box = document.getElementById(`replies-${show.dataset.thread}`);
      if (show.getAttribute('aria-expanded') === 'true') {
        box.replaceChildren();
        show.setAttribute('aria-expanded', 'false');
        return;
      }
      const { res, doc } = await fetchPage(show.href);
      const list = doc.getElementById(`replies-${show.dataset.thread}-list`);
      if (!res.ok || !list) {
        window.location.assign(show.href);
        return;
      }
      box.replaceChildren(list);
      show.setAttribute('aria-expanded', 'true');
    } else if (more) {
      e.preventDefault();
      const { res, doc } = await fetchPage(more.href);
      const items = doc.querySelectorAll('#comments .comment-list > li');
      const list = more.parentElement.querySelector('.comment-list:last-of-type');
      if (!res.ok || !list) {
        window.location.assign(more.href);
        return;
      }
      const pinned = new Set([...list.querySelectorAll(':scope > li > article')].map((a) => a.id));
      items.forEach((li) => {
        const id = li.querySelector('article')?.id;
        if (!pinned.has(id)) list.append(li);
      });
      const next = doc.querySelector('#comments a[data-load-more]');
      if (next) more.href = next.href;
      else more.remove();
    }
  });

  // Back from "Sign in to comment": the box is ready.
  // (Again once loaded: navigating to the #comment-box fragment may move the focus away.)
  const box = document.getElementById('comment-text');
  if (box && new URLSearchParams(window.location.search).get('comment') === '1') {
    const ready = () => { if (document.activeElement !== box) box.focus({ preventScroll: false }); };
    ready();
    if (document.readyState === 'complete') setTimeout(ready, 0);
    else window.addEventListener('load', () => setTimeout(ready, 0), { once: true });
  }
})();
