// Building DOM without innerHTML: the page's Content-Security-Policy refuses inline styles and
// scripts, and text is never parsed as markup (device ids and names come from devices).
export const $ = (sel, el = document) => el.querySelector(sel);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the text of an element only when it changed: live updates then cost no layout when nothing moved. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function setClass(el, name) {
  if (el.className !== name) el.className = name;
}

/** A small SVG icon from the sprite-less set below (decorative: the text next to it says the same). */
const ICONS = {
  online: 'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13Zm-1 9.3L4.2 8l1-1L7 8.8l3.8-3.8 1 1Z',
  offline: 'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13Zm2.8 8.3-1 1L8 9 6.2 10.8l-1-1L7 8 5.2 6.2l1-1L8 7l1.8-1.8 1 1L9 8Z',
  unknown: 'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13ZM8 12a.9.9 0 1 1 0-1.8.9.9 0 0 1 0 1.8Zm1-3.6V9H7V7.6c1.2-.3 2-.7 2-1.5a1 1 0 0 0-2 0H5.2a2.8 2.8 0 0 1 5.6 0c0 1.2-.8 1.9-1.8 2.3Z',
  warn: 'M8 1 15 14H1Zm-.9 4.5v4h1.8v-4Zm0 5.2v1.6h1.8v-1.6Z',
  info: 'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13ZM7.1 7h1.8v5H7.1Zm0-3h1.8v1.8H7.1Z',
  sun: 'M8 4.5a3.5 3.5 0 1 1 0 7 3.5 3.5 0 0 1 0-7ZM7.3 0h1.4v2.5H7.3Zm0 13.5h1.4V16H7.3ZM0 7.3h2.5v1.4H0Zm13.5 0H16v1.4h-2.5Z',
  moon: 'M6 1a6.5 6.5 0 1 0 9 8.2A5.5 5.5 0 0 1 6 1Z',
};

export function icon(name, cls = 'icon') {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', `${cls} icon-${name}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', ICONS[name] ?? ICONS.info);
  svg.append(path);
  return svg;
}
