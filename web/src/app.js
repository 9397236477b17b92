// Turtlemen: progressive enhancement for every page. The pages work without this file.
// Today: a thumbnail that fails to load is replaced by the same placeholder as a missing one.
(() => {
  'use strict';
  // `html.js` lets the stylesheet style what only exists with the script.
  document.documentElement.classList.add('js');

  const placeholder = (img) => {
    const div = document.createElement('div');
    div.className = 'thumb-placeholder';
    img.replaceWith(div);
  };

  for (const img of document.querySelectorAll('.thumb img')) {
    if (img.complete && img.naturalWidth === 0) {
      placeholder(img);
    } else {
      img.addEventListener('error', () => placeholder(img), { once: true });
    }
  }
})();

// The header's search box offers channels and video titles as one types: a list under the box
// (ARIA combobox with a listbox), filled from /api/v1/search/suggestions. Arrow keys move through
// it, Enter opens the chosen entry, Escape closes it; without this script the box is a plain
// form that submits to /search.
(() => {
  'use strict';
  const input = document.getElementById('site-search-q');
  if (!input) return;
  const form = input.form;
  const list = document.createElement('ul');
  list.id = 'site-search-suggestions';
  list.className = 'suggestions';
  list.setAttribute('role', 'listbox');
  list.setAttribute('aria-label', 'Suggestions');
  list.hidden = true;
  form.append(list);
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', list.id);
  input.setAttribute('aria-expanded', 'false');

  let active = -1;
  let timer = 0;
  let asked = '';
  let controller = null;

  const options = () => Array.from(list.querySelectorAll('[role="option"]'));
  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    active = -1;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  };
  const highlight = (i) => {
    const all = options();
    all.forEach((o, j) => o.setAttribute('aria-selected', String(j === i)));
    active = i;
    if (i >= 0 && all[i]) input.setAttribute('aria-activedescendant', all[i].id);
    else input.removeAttribute('aria-activedescendant');
  };
  const show = (suggestions) => {
    list.replaceChildren();
    suggestions.forEach((s, i) => {
      const li = document.createElement('li');
      li.id = `site-search-option-${i}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', 'false');
      li.className = `suggestion suggestion-${s.kind}`;
      const a = document.createElement('a');
      a.href = s.url;
      a.tabIndex = -1;
      a.textContent = s.text;
      if (s.kind === 'channel') {
        const handle = document.createElement('span');
        handle.className = 'handle';
        handle.textContent = ` @${s.handle}`;
        a.append(handle);
      }
      li.append(a);
      list.append(li);
    });
    list.hidden = suggestions.length === 0;
    input.setAttribute('aria-expanded', String(suggestions.length > 0));
    active = -1;
  };
  const ask = async () => {
    const q = input.value.trim();
    if (q === asked) return;
    asked = q;
    if (controller) controller.abort();
    if (q.length < 2) { close(); return; }
    controller = new AbortController();
    try {
      const res = await fetch(`/api/v1/search/suggestions?q=${encodeURIComponent(q)}`, {
        headers: { accept: 'application/json' },
        signal: controller.signal,
      });
      if (!res.ok) { close(); return; }
      const body = await res.json();
      if (input.value.trim() === q) show(body.suggestions || []);
    } catch (e) {
      if (e.name !== 'AbortError') close();
    }
  };

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
  input.addEventListener('keydown', (e) => {
    const all = options();
    if (e.key === 'ArrowDown' && all.length) {
      e.preventDefault();
      highlight((active + 1) % all.length);
    } else if (e.key === 'ArrowUp' && all.length) {
      e.preventDefault();
      highlight(active <= 0 ? all.length - 1 : active - 1);
    } else if (e.key === 'Enter' && active >= 0 && all[active]) {
      e.preventDefault();
      window.location.assign(all[active].querySelector('a').href);
    } else if (e.key === 'Escape') {
      close();
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 200));
})();
