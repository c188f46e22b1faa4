// live.js: a camera's live picture. cctvd sends the segment its ffmpeg
// is writing over a WebSocket (GET /api/v1/cameras/{name}/live): an init
// segment, then a fragment about every half second, which this appends to
// a Media Source. A browser's WebSocket cannot send the Authorization
// header and the token never goes into a URL: the page asks for a
// single-use ticket with the token (POST .../live/ticket) and opens the
// socket with it. The player holds the live edge: when it falls behind
// what arrived, it jumps ahead (a tab that was slow, a drop); what was
// played long ago is removed from the buffer.

import * as api from './api.js';
import { h, setText } from './dom.js';

// HOLD: a player further than this behind the newest picture jumps to
// LAG behind it (the fragment being written is half a second long).
const HOLD = 2.5;
const LAG = 1.0;
// KEEP seconds of played video stay in the buffer, at most.
const KEEP = 20;
// Frames waiting to be appended, at most: beyond, the stream starts over.
const MAX_PENDING = 120;

// codecName names a codec string for a person.
function codecName(codec) {
  if (/^(hvc1|hev1)/.test(codec)) return 'H.265 (HEVC)';
  if (/^(avc1|avc3)/.test(codec)) return 'H.264';
  return codec;
}

// The live views shown: each plays while it is on screen and the tab is
// visible, and stops its stream otherwise (a view scrolled away, a tab in
// the background cost the box nothing).
const shown = new Set();
const seen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const lv = e.target.liveView;
    if (lv) { lv.inView = e.isIntersecting; lv.sync(); }
  }
});
document.addEventListener('visibilitychange', () => { for (const lv of shown) lv.sync(); });

export class LiveView {
  // cam is the camera as the API shows it (name, mode, config);
  // onUnauthorized is called when the token is refused.
  constructor(cam, { onUnauthorized }) {
    this.name = cam.name;
    this.onUnauthorized = onUnauthorized;
    this.video = h('video', { muted: true, playsinline: true, autoplay: true, 'data-live': 'stopped', 'aria-label': `${cam.name}, live` });
    this.video.muted = true;
    this.msg = h('p', { class: 'live-msg', role: 'status' });
    this.note = h('p', { class: 'live-note', hidden: true });
    this.el = h('div', { class: 'live', 'data-camera': cam.name }, this.video, this.msg, this.note);
    this.gen = 0; // bumped by every start and stop: late callbacks of an older one do nothing
    this.ws = null;
    this.ms = null;
    this.url = '';
    this.timer = 0;
    this.wanted = false; // started, and not stopped
    this.on = false; // shown by the page
    this.inView = false;
    this.el.liveView = this;
    this.update(cam);
  }

  // show plays the view while it is on screen (it must be in the page).
  show() {
    this.on = true;
    shown.add(this);
    seen.observe(this.el);
  }

  hide() {
    this.on = false;
    shown.delete(this);
    seen.unobserve(this.el);
    this.stop();
  }

  sync() {
    if (this.on && this.inView && !document.hidden) this.start();
    else this.stop();
  }

  // update shows what the camera's mode means for its live picture.
  update(cam) {
    const c = cam.config || {};
    const transcoded = cam.mode === 'transcode';
    this.note.hidden = !transcoded;
    if (transcoded) setText(this.note, `Transcoded: the live picture is what is recorded, ${c.frameRate} fps at ${(c.resolution || '').replace('x', '×')}.`);
  }

  say(text, bad = false) {
    setText(this.msg, text);
    this.msg.hidden = !text;
    this.msg.classList.toggle('bad', bad);
  }

  setState(s) { this.video.dataset.live = s; }

  start() {
    if (this.wanted || this.video.dataset.live === 'unsupported') return; // it would not play now either
    this.wanted = true;
    this.connect();
  }

  stop() {
    if (!this.wanted) return;
    this.wanted = false;
    this.gen++;
    clearTimeout(this.timer);
    this.closeSocket();
    this.teardown();
    this.setState('stopped');
    this.say('');
  }

  destroy() {
    this.hide();
    this.el.remove();
  }

  closeSocket() {
    if (this.ws) {
      this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
      this.ws.close();
    }
    this.ws = null;
  }

  retry(gen, after = 0) {
    if (gen !== this.gen || !this.wanted) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (gen === this.gen && this.wanted) this.connect(); }, Math.max(2, Math.min(after || 2, 30)) * 1000);
  }

  async connect() {
    const gen = ++this.gen;
    this.closeSocket();
    this.setState('connecting');
    this.say('Connecting…');
    let ticket;
    try {
      ({ body: { ticket } } = await api.json('POST', `/api/v1/cameras/${api.enc(this.name)}/live/ticket`));
    } catch (e) {
      if (gen !== this.gen) return;
      if (e.status === 401) { this.onUnauthorized(); return; }
      this.setState('error');
      this.say(e.status === 429 ? `${e.message}. Trying again…` : `No live view: ${e.status ? `HTTP ${e.status}: ` : ''}${e.message}`, true);
      this.retry(gen, e.retryAfter);
      return;
    }
    if (gen !== this.gen) return;
    this.resetMedia(gen);
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/cameras/${api.enc(this.name)}/live?ticket=${api.enc(ticket)}`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev) => { if (gen === this.gen) this.message(gen, ev.data); };
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this.ws = null;
      this.setState('error');
      this.say(ev.code === 1001 ? 'cctvd stopped the live view. Reconnecting…' : 'The live stream was cut. Reconnecting…', true);
      this.retry(gen);
    };
  }

  // resetMedia starts a new Media Source: every connection is a timeline
  // of its own.
  resetMedia(gen) {
    this.teardown();
    this.pending = [];
    this.sb = null;
    this.mime = '';
    this.clock = null;
    this.video.dataset.inits = '0';
    this.video.dataset.drops = '0';
    this.video.dataset.connects = String(Number(this.video.dataset.connects || 0) + 1);
    this.ms = new MediaSource();
    this.url = URL.createObjectURL(this.ms);
    this.ms.addEventListener('sourceopen', () => { if (gen === this.gen) this.pump(); }, { once: true });
    this.video.src = this.url;
  }

  teardown() {
    if (this.url) {
      this.video.pause();
      this.video.removeAttribute('src');
      this.video.load();
      URL.revokeObjectURL(this.url);
    }
    this.url = '';
    this.ms = null;
    this.sb = null;
    this.pending = [];
  }

  message(gen, data) {
    if (typeof data !== 'string') {
      this.pending.push(data);
      if (this.pending.length > MAX_PENDING) { // the decoder does not keep up: start over
        this.connect();
        return;
      }
      this.pump();
      return;
    }
    let m;
    try { m = JSON.parse(data); } catch { return; }
    switch (m.type) {
      case 'init':
        this.video.dataset.inits = String(Number(this.video.dataset.inits) + 1);
        if (!window.MediaSource || !MediaSource.isTypeSupported(m.mime)) {
          this.unsupported(m);
          return;
        }
        this.pending.push({ mime: m.mime });
        this.pump();
        break;
      case 'clock': // without wall: not known (yet) from media time m.media on
        this.clock = m.wall ? { media: m.media, wall: Date.parse(m.wall) } : null;
        if (!this.clock) delete this.video.dataset.edgeWall;
        break;
      case 'drop':
        this.video.dataset.drops = String(Number(this.video.dataset.drops) + 1);
        break;
      case 'waiting':
        if (!this.sb || !this.sb.buffered.length) {
          this.setState('waiting');
          this.say(`Waiting: ${m.reason}.`);
        }
        break;
      default:
    }
  }

  unsupported(m) {
    this.gen++;
    this.wanted = false;
    this.closeSocket();
    this.teardown();
    this.setState('unsupported');
    this.say(`This browser cannot play ${codecName(m.codec)} video (${m.codec}), which this camera sends: its live view needs a browser that can (Chrome, Edge or Safari for H.265; Firefox cannot). Recording is not affected.`, true);
  }

  // pump appends what is pending, one buffer at a time.
  pump() {
    if (!this.ms || this.ms.readyState !== 'open' || (this.sb && this.sb.updating)) return;
    while (this.pending.length) {
      const item = this.pending.shift();
      if (item.mime) { // a new stream: its init segment comes next
        if (!this.sb) {
          this.sb = this.ms.addSourceBuffer(item.mime);
          this.sb.mode = 'segments';
          this.sb.addEventListener('updateend', () => this.appended());
        } else if (item.mime !== this.mime) {
          if (!this.sb.changeType) { this.connect(); return; }
          this.sb.changeType(item.mime);
        }
        this.mime = item.mime;
        continue;
      }
      if (!this.sb) continue; // media before any init: nothing can decode it
      try {
        this.sb.appendBuffer(item);
      } catch (e) {
        this.setState('error');
        this.say(`The browser refused the live video (${e.name}). Reconnecting…`, true);
        this.retry(this.gen);
        return;
      }
      return; // the next one after updateend
    }
  }

  // appended holds the live edge and trims the buffer after each append.
  appended() {
    const v = this.video;
    const b = this.sb && this.sb.buffered;
    if (!b || !b.length) { this.pump(); return; }
    const start = b.start(b.length - 1);
    const end = b.end(b.length - 1);
    if (v.currentTime < start || end - v.currentTime > HOLD) v.currentTime = Math.max(start, end - LAG);
    if (!this.sb.updating && v.currentTime - b.start(0) > KEEP + 10) {
      this.sb.remove(0, v.currentTime - KEEP); // updateend again, then the pump
    }
    if (v.paused) v.play().catch(() => { /* muted: allowed; if not, the state says so */ });
    if (this.clock) v.dataset.edgeWall = String(Math.round(this.clock.wall + (end - this.clock.media) * 1000));
    v.dataset.bufferedEnd = end.toFixed(3);
    if (v.dataset.live !== 'playing') {
      this.setState('playing');
      this.say('');
    }
    if (!this.sb.updating) this.pump();
  }
}
