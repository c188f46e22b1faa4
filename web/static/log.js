// log.js: the live log, the daemon's or one camera's, followed through
// the API's Server-Sent Events with fetch() and a stream reader (an
// EventSource cannot send the Authorization header). Pause holds new lines
// back; at most MAX lines stay in the page.

import * as api from './api.js';
import { $, h, setText } from './dom.js';
import * as fmt from './format.js';

export const MAX = 500;
const TAIL = 300;
const LEVELS = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, fatal: 5, panic: 6 };
const KNOWN = new Set(['time', 'level', 'message', 'component', 'camera', 'source', 'error']);

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const id = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(id); resolve(); }, { once: true });
  });
}

export class LogPanel {
  constructor({ onUnauthorized }) {
    this.onUnauthorized = onUnauthorized;
    this.lines = $('#log-lines');
    this.source = $('#log-source');
    this.pauseBtn = $('#log-pause');
    this.state = $('#log-state');
    this.paused = false;
    this.pending = [];
    this.lastSeq = 0;
    this.lastTime = 0;
    this.abort = null;
    this.level = $('#log-level');
    this.source.addEventListener('change', () => this.restart());
    this.level.addEventListener('change', () => { if (this.abort) this.restart(); });
    this.pauseBtn.addEventListener('click', () => this.setPaused(!this.paused));
    $('#log-clear').addEventListener('click', () => { this.lines.replaceChildren(); this.pending = []; this.status(); });
    fmt.onTZChange(() => {
      for (const el of this.lines.querySelectorAll('time[datetime]')) setText(el, fmt.timeMs(el.getAttribute('datetime')));
    });
  }

  // setCameras keeps the source list in step with the cameras.
  setCameras(names) {
    const want = ['', ...names];
    const have = [...this.source.options].map((o) => o.value);
    if (want.join('\n') === have.join('\n')) return;
    const sel = this.source.value;
    this.source.replaceChildren(...want.map((n) => h('option', { value: n, text: n ? `Camera ${n} (ffmpeg and supervisor)` : 'Daemon (every component)' })));
    this.source.value = want.includes(sel) ? sel : '';
    if (this.source.value !== sel && this.abort) this.restart();
  }

  // open shows a camera's log ('' for the daemon's).
  open(camera) {
    if (this.source.value !== camera || !this.abort) {
      this.source.value = camera;
      this.restart();
    }
    this.lines.closest('section').scrollIntoView({ block: 'nearest' });
  }

  start() { if (!this.abort) this.restart(); }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
    this.lines.replaceChildren();
    this.pending = [];
    this.setPaused(false);
    setText(this.state, '');
  }

  setPaused(p) {
    this.paused = p;
    this.pauseBtn.setAttribute('aria-pressed', String(p));
    this.pauseBtn.lastChild.textContent = p ? 'Resume' : 'Pause';
    if (!p && this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      this.append(batch);
    }
    this.status();
  }

  status(extra = '') {
    const n = this.lines.childElementCount;
    let s = this.paused ? `Paused · ${this.pending.length} new line${this.pending.length === 1 ? '' : 's'} held` : (this.following ? 'Following' : 'Connecting…');
    s += ` · ${n} line${n === 1 ? '' : 's'} shown`;
    setText(this.state, extra || s);
  }

  restart() {
    if (this.abort) this.abort.abort();
    const ac = new AbortController();
    this.abort = ac;
    this.lines.replaceChildren();
    this.pending = [];
    this.lastSeq = 0;
    this.lastTime = 0;
    this.following = false;
    this.status();
    const cam = this.source.value;
    const path = cam ? `/api/v1/cameras/${api.enc(cam)}/logs?tail=${TAIL}&follow=true` : `/api/v1/logs?tail=${TAIL}&follow=true`;
    this.run(path, ac.signal);
  }

  async run(path, signal) {
    let delay = 1000;
    while (!signal.aborted) {
      let why = 'The log stream ended';
      try {
        await api.follow(path, {
          signal,
          onOpen: () => { this.following = true; delay = 1000; this.status(); },
          onEvent: (ev) => this.event(ev),
        });
      } catch (e) {
        if (signal.aborted || e.name === 'AbortError') return;
        if (e.status === 401) { this.onUnauthorized(); return; }
        if (e.status === 429) delay = Math.max(delay, (e.retryAfter || 10) * 1000);
        why = e.status ? `HTTP ${e.status}: ${e.message}` : e.message;
      }
      if (signal.aborted) return;
      this.following = false;
      this.status(`${why}: trying again in ${Math.round(delay / 1000)} s`);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 30000);
    }
  }

  event(ev) {
    if (ev.event !== 'log') return;
    const seq = Number(ev.id) || 0;
    let entry = null;
    try { entry = JSON.parse(ev.data); } catch { /* a line cut for length */ }
    const t = entry && entry.time ? Date.parse(entry.time) : 0;
    if (seq && seq <= this.lastSeq) {
      // Seen already (a reconnection sends the tail again), unless cctvd
      // restarted and numbers its lines from 1 again.
      if (!(t && t > this.lastTime)) return;
      this.pendingOrAppend([{ divider: 'cctvd restarted' }]);
    }
    if (seq) this.lastSeq = seq;
    if (t) this.lastTime = t;
    const min = LEVELS[this.level.value] ?? 0;
    if (entry && (LEVELS[entry.level] ?? LEVELS.info) < min) return;
    this.pendingOrAppend([{ seq, entry, text: ev.data }]);
  }

  pendingOrAppend(items) {
    if (this.paused) {
      this.pending.push(...items);
      if (this.pending.length > MAX) this.pending.splice(0, this.pending.length - MAX);
      this.status();
      return;
    }
    this.append(items);
  }

  append(items) {
    const box = this.lines;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const frag = document.createDocumentFragment();
    for (const it of items.slice(-MAX)) frag.append(it.divider ? h('div', { class: 'll-divider', text: it.divider }) : render(it));
    box.append(frag);
    let extra = box.childElementCount - MAX;
    while (extra-- > 0) box.firstElementChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
    this.status();
  }
}

// render is one line: time, level, who (component or ffmpeg, camera),
// message, the other fields as key=value.
function render({ seq, entry, text }) {
  if (!entry || typeof entry !== 'object') {
    return h('div', { class: 'll', 'data-seq': seq }, h('span', { class: 'll-msg', text }));
  }
  const level = String(entry.level || 'info');
  const who = [entry.source === 'ffmpeg' ? 'ffmpeg' : entry.component, entry.camera].filter(Boolean).join(' · ');
  const kv = Object.entries(entry)
    .filter(([k]) => !KNOWN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('  ');
  return h('div', { class: `ll lvl-${level}`, 'data-seq': seq },
    entry.time ? h('time', { class: 'll-t', datetime: entry.time, text: fmt.timeMs(entry.time) }) : null,
    h('span', { class: 'll-lvl', text: level.toUpperCase() }),
    who ? h('span', { class: 'll-who', text: who }) : null,
    h('span', { class: 'll-msg', text: String(entry.message ?? '') }),
    entry.error ? h('span', { class: 'll-err', text: `error: ${entry.error}` }) : null,
    entry.source && entry.source !== 'ffmpeg' ? h('span', { class: 'll-kv', text: `source=${entry.source}` }) : null,
    kv ? h('span', { class: 'll-kv', text: kv }) : null);
}
