// dom.js: building and updating elements. Text from the API (camera
// names, log lines, errors) only ever goes in as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

// setText changes an element's text only when it differs, so that a
// screen reader is not told of a change that is none.
export function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

export function setAttr(el, name, value) {
  const v = String(value);
  if (el.getAttribute(name) !== v) el.setAttribute(name, v);
}

// svg is an inline icon from a list of path data (24×24 view box).
export function icon(name) {
  const paths = ICONS[name] || [];
  const ns = 'http://www.w3.org/2000/svg';
  const s = document.createElementNS(ns, 'svg');
  s.setAttribute('viewBox', '0 0 24 24');
  s.setAttribute('aria-hidden', 'true');
  s.setAttribute('class', 'icon');
  for (const d of paths) {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    s.append(p);
  }
  return s;
}

const ICONS = {
  play: ['M8 5v14l11-7z'],
  stop: ['M7 7h10v10H7z'],
  log: ['M4 6h16M4 10h16M4 14h10M4 18h13'],
  close: ['M6 6l12 12M18 6L6 18'],
  prev: ['M15 6l-6 6 6 6'],
  next: ['M9 6l6 6-6 6'],
  download: ['M12 4v11M7 10l5 5 5-5M5 20h14'],
  pause: ['M8 5h3v14H8zM13 5h3v14h-3z'],
  camera: ['M3 7h12v10H3zM15 10l6-3v10l-6-3'],
};
