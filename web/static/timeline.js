// timeline.js: one camera's footage over the last hours, from
// GET /api/v1/cameras/{name}/spans: spans of footage coloured by where they
// are (on this box and in S3, awaiting upload, in S3 only), gaps coloured
// by cause, the open segment while the camera records, and above them the
// activity (motion) intervals, from GET /api/v1/cameras/{name}/activity.
// A click plays from that instant; from the keyboard, the arrows move a
// cursor and Enter plays from it.

import { h, setText, setAttr } from './dom.js';
import * as fmt from './format.js';

// CAUSES names the gap log's causes for people.
export const CAUSES = {
  'operator-stop': 'stopped by an operator',
  'daemon-down': 'cctvd was not running',
  unreachable: 'camera unreachable',
  auth: 'camera refused the credentials',
  'not-found': 'stream not found on the camera',
  stall: 'stream stalled',
  'ffmpeg-exit': 'ffmpeg exited',
  'start-failed': 'ffmpeg could not start',
  reconfigured: 'camera reconfigured',
  retention: 'deleted before upload (disk full)',
  'salvage-failed': 'file could not be salvaged',
  unexplained: 'unexplained',
  unknown: 'no footage, no cause logged',
};

// where says where a span's footage is, and for a camera with a sub
// feed which feed the span's best copy is (span.feed).
export function where(span) {
  const w = whereAlone(span);
  if (span.feed === 'sub') return { cls: `${w.cls} span-subfeed`, text: `sub feed only (the main copy is gone), ${w.text}` };
  if (span.feed === 'main') return { cls: w.cls, text: `main feed, ${w.text}` };
  return w;
}

function whereAlone(span) {
  if (span.uploaded && span.local) return { cls: 'both', text: 'on this box and in S3' };
  if (span.uploaded) return { cls: 's3', text: 'in S3 only (cleared from this box)' };
  if (span.local) {
    const up = span.uploadedSegments;
    return { cls: 'local', text: up ? `on this box, ${up} of ${span.segments} segments in S3` : 'on this box, awaiting upload' };
  }
  return { cls: 'local', text: `${span.localSegments} of ${span.segments} segments on this box, ${span.uploadedSegments} in S3` };
}

// ticks: the axis step for a window, in seconds.
function tickStep(range) {
  if (range > 12 * 3600) return 3 * 3600;
  if (range > 2 * 3600) return 3600;
  if (range > 1800) return 600;
  return 120;
}

export class Timeline {
  // onPlay(t, note) asks to play the camera's footage from t (ms).
  constructor(camera, { onPlay }) {
    this.camera = camera;
    this.onPlay = onPlay;
    this.data = null;
    this.activity = []; // intervals, by start: {start, end, peak, level} in ms
    this.range = 86400;
    this.liveSince = 0; // ms; 0 when the camera is not recording
    this.cursor = 0; // ms; 0 until the keyboard moves it
    this.caption = h('p', { class: 'tl-caption' });
    this.track = h('div', { class: 'tl-track' });
    this.acts = h('div', { class: 'tl-acts', 'aria-hidden': 'true' });
    this.cursorEl = h('div', { class: 'tl-cursor', hidden: true });
    this.hoverEl = h('div', { class: 'tl-hover', hidden: true });
    this.tip = h('div', { class: 'tl-tip', role: 'tooltip', id: `tl-tip-${camera}`, hidden: true });
    this.bar = h('div', {
      class: 'tl-bar', role: 'slider', tabindex: '0',
      'aria-label': `Footage of ${camera}: arrows move the cursor, Enter plays from it`,
      'aria-describedby': `tl-tip-${camera}`,
      onpointermove: (e) => this.hover(e),
      onpointerleave: () => { this.hoverEl.hidden = true; this.tip.hidden = true; },
      onclick: (e) => this.click(e),
      onkeydown: (e) => this.key(e),
      onblur: () => { this.tip.hidden = true; },
    }, this.track, this.acts, this.cursorEl, this.hoverEl);
    this.axis = h('div', { class: 'tl-axis', 'aria-hidden': 'true' });
    this.el = h('div', { class: 'tl' }, this.caption, h('div', { class: 'tl-frame' }, this.bar, this.tip), this.axis);
  }

  window() {
    const end = Date.now();
    return { start: end - this.range * 1000, end };
  }

  set(data) { this.data = data; this.render(); }

  // setActivity takes the API's intervals.
  setActivity(intervals) {
    this.activity = (intervals || []).map((iv) => ({ start: Date.parse(iv.start), end: Date.parse(iv.end), peak: Date.parse(iv.peak), level: iv.level }));
    this.render();
  }

  // activityAt is the interval holding t (ms), if any.
  activityAt(t) { return this.activity.find((iv) => t >= iv.start && t < iv.end); }

  // nextActivity is the first interval starting after t; prevActivity the
  // last starting before t less a second (from inside an interval, its
  // start is "previous" only a second into it).
  nextActivity(t) { return this.activity.find((iv) => iv.start > t + 500); }
  prevActivity(t) { return this.activity.filter((iv) => iv.start < t - 1000).pop(); }
  setRange(seconds) { this.range = seconds; this.render(); }
  setLive(since) { this.liveSince = since; }

  // at says what the timeline holds at t (ms).
  at(t) {
    if (this.liveSince && t >= this.liveEdge() && t <= Date.now()) return { kind: 'live' };
    if (!this.data) return null;
    for (const s of this.data.spans) {
      if (t >= Date.parse(s.start) && t < Date.parse(s.end)) return { kind: 'span', span: s };
    }
    for (const g of this.data.gaps) {
      if (t >= Date.parse(g.start) && t < Date.parse(g.end)) {
        const piece = (g.causes || []).find((c) => t >= Date.parse(c.start) && t < Date.parse(c.end));
        return { kind: 'gap', gap: g, piece };
      }
    }
    return null;
  }

  // liveEdge: where the open segment starts, as far as the page knows.
  liveEdge() {
    const spans = this.data ? this.data.spans : [];
    const last = spans.length ? Date.parse(spans[spans.length - 1].end) : 0;
    return Math.max(last, this.liveSince);
  }

  describe(t) {
    const act = this.activityAt(t);
    const text = this.describeFootage(t);
    return act ? `${text} · activity ${fmt.time(act.start)} to ${fmt.time(act.end)}` : text;
  }

  describeFootage(t) {
    const what = this.at(t);
    const when = fmt.dateTime(t);
    if (!what) return `${when}: nothing known`;
    if (what.kind === 'live') return `${when}: recording now (the open segment plays once it closes)`;
    if (what.kind === 'span') return `${when}: footage, ${where(what.span).text}`;
    const c = what.piece;
    if (!c) return `${when}: no footage (no cause logged)`;
    const secs = (Date.parse(c.end) - Date.parse(c.start)) / 1000;
    return `${when}: no footage, ${CAUSES[c.cause] || c.cause}${c.detail ? ` (${c.detail})` : ''}: ` +
      `${fmt.dateTime(c.start)} to ${fmt.time(c.end)}, ${fmt.duration(secs)}`;
  }

  timeAt(clientX) {
    const r = this.bar.getBoundingClientRect();
    const { start, end } = this.window();
    const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return start + f * (end - start);
  }

  hover(e) {
    const t = this.timeAt(e.clientX);
    const r = this.bar.getBoundingClientRect();
    const x = e.clientX - r.left;
    this.hoverEl.hidden = false;
    this.hoverEl.style.left = `${x}px`;
    this.showTip(this.describe(t), x, r.width);
  }

  showTip(text, x, width) {
    setText(this.tip, text);
    this.tip.hidden = false;
    const w = this.tip.offsetWidth;
    this.tip.style.left = `${Math.min(Math.max(0, x - w / 2), Math.max(0, width - w))}px`;
  }

  click(e) {
    const t = this.timeAt(e.clientX);
    this.cursor = t;
    this.render();
    this.play(t);
  }

  // play plays from t, or from the nearest footage when t has none.
  play(t) {
    const what = this.at(t);
    const spans = this.data ? this.data.spans : [];
    if (what && what.kind === 'gap') {
      const next = spans.find((s) => Date.parse(s.start) >= Date.parse(what.gap.end) - 1000);
      const why = what.piece ? ` (${CAUSES[what.piece.cause] || what.piece.cause})` : '';
      if (next) {
        this.onPlay(Date.parse(next.start), `No footage at ${fmt.time(t)}${why}: playing from the next footage.`);
        return;
      }
    }
    if (what && what.kind === 'live' && spans.length) {
      const last = spans[spans.length - 1];
      const from = Math.max(Date.parse(last.start), Date.parse(last.end) - 30000);
      this.onPlay(from, 'The open segment plays once it closes: playing the newest closed footage.');
      return;
    }
    this.onPlay(t, '');
  }

  key(e) {
    const { start, end } = this.window();
    const step = ((end - start) / 96) * (e.shiftKey ? 8 : 1);
    if (!this.cursor) {
      const spans = this.data ? this.data.spans : [];
      this.cursor = spans.length ? Math.max(start, Date.parse(spans[spans.length - 1].start)) : end - (end - start) / 2;
    }
    let t = this.cursor;
    switch (e.key) {
      case 'ArrowLeft': case 'ArrowDown': t -= step; break;
      case 'ArrowRight': case 'ArrowUp': t += step; break;
      case 'PageDown': t -= step * 8; break;
      case 'PageUp': t += step * 8; break;
      case 'Home': t = start; break;
      case 'End': t = end - 1000; break;
      case 'Enter': case ' ':
        e.preventDefault();
        this.play(this.cursor);
        return;
      default: return;
    }
    e.preventDefault();
    this.cursor = Math.min(end - 1000, Math.max(start, t));
    this.render();
    const r = this.bar.getBoundingClientRect();
    this.showTip(this.describe(this.cursor), ((this.cursor - start) / (end - start)) * r.width, r.width);
  }

  render() {
    const { start, end } = this.window();
    const len = end - start;
    const pct = (t) => ((t - start) / len) * 100;
    const items = [];
    const add = (s, e, cls) => {
      const a = Math.max(s, start);
      const b = Math.min(e, end);
      if (b <= a) return null;
      const el = h('div', { class: `tl-item ${cls}` });
      el.style.left = `${pct(a)}%`;
      el.style.width = `${pct(b) - pct(a)}%`;
      items.push(el);
      return el;
    };
    let footage = 0;
    let gaps = 0;
    if (this.data) {
      for (const g of this.data.gaps) {
        const gs = Date.parse(g.start);
        const ge = Date.parse(g.end);
        if (ge <= start || gs >= end) continue;
        add(gs, ge, 'gap gap-unknown');
        for (const c of g.causes || []) {
          if (Date.parse(c.end) <= start) continue;
          gaps++;
          add(Date.parse(c.start), Date.parse(c.end), `gap gap-${CSS.escape(c.cause)}`);
        }
      }
      for (const s of this.data.spans) {
        const ss = Date.parse(s.start);
        const se = Date.parse(s.end);
        footage += Math.max(0, Math.min(se, end) - Math.max(ss, start));
        const el = add(ss, se, `span span-${where(s).cls}`);
        if (el && s.feed) el.dataset.feed = s.feed;
      }
    }
    if (this.liveSince) add(this.liveEdge(), end, 'live');
    this.track.replaceChildren(...items);
    let active = 0;
    this.acts.replaceChildren(...this.activity.filter((iv) => iv.end > start && iv.start < end).map((iv) => {
      active++;
      const el = h('div', { class: 'tl-act' });
      el.style.left = `${pct(Math.max(iv.start, start))}%`;
      el.style.width = `${pct(Math.min(iv.end, end)) - pct(Math.max(iv.start, start))}%`;
      el.style.opacity = `${Math.min(1, 0.55 + iv.level * 4)}`;
      return el;
    }));

    const cur = this.cursor && this.cursor >= start ? this.cursor : 0;
    this.cursorEl.hidden = !cur;
    if (cur) this.cursorEl.style.left = `${pct(cur)}%`;
    setAttr(this.bar, 'aria-valuemin', Math.round(start / 1000));
    setAttr(this.bar, 'aria-valuemax', Math.round(end / 1000));
    setAttr(this.bar, 'aria-valuenow', Math.round((cur || end) / 1000));
    setAttr(this.bar, 'aria-valuetext', cur ? this.describe(cur) : 'no cursor yet: press an arrow key');

    const label = this.range >= 3600 ? `${this.range / 3600} h` : `${this.range / 60} min`;
    setText(this.caption, this.data
      ? `Last ${label}: ${fmt.duration(footage / 1000)} of footage${gaps ? `, ${gaps} logged gap${gaps > 1 ? 's' : ''}` : ''}` +
        `${active ? `, activity ${active} time${active > 1 ? 's' : ''}` : ''}`
      : `Last ${label}: loading…`);

    const step = tickStep(this.range) * 1000;
    const off = fmt.isUTC() ? 0 : -new Date(end).getTimezoneOffset() * 60000;
    const ticks = [];
    for (let t = Math.ceil((start + off) / step) * step - off; t < end; t += step) {
      if (pct(t) < 3 || pct(t) > 97) continue; // a label cut by the edge
      const el = h('span', { text: fmt.hm(t) });
      el.style.left = `${pct(t)}%`;
      ticks.push(el);
    }
    this.axis.replaceChildren(...ticks);
  }
}
