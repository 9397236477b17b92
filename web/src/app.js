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
