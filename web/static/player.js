// player.js: plays a minute of a camera's footage from an instant. The
// clip is an export (GET /api/v1/cameras/{name}/export?from=&to=), fetched
// with the bearer token as a Blob and played from its blob: URL: a <video>
// cannot send the header, and the token never goes into a URL. Gaps are
// skipped in the clip; the wall clock under the video follows the spans.
// "Previous / next activity" jump to the camera's activity intervals.
// A camera with a sub feed: the clip is the best copy (the sub feed's
// where the main copy is gone, said); a minute of both feeds comes as
// parts (HTTP 300), played one after the other; "Send in full quality"
// asks for the minute's main feed to go up first
// (POST /api/v1/cameras/{name}/upload).

import * as api from './api.js';
import { $, h, icon, setText } from './dom.js';
import * as fmt from './format.js';

export const CLIP_MS = 60 * 1000;

export class Player {
  // spansOf(camera) returns the camera's timeline data, if loaded;
  // timelineOf(camera) its timeline (activity intervals).
  constructor({ spansOf, timelineOf, camOf, onUnauthorized }) {
    this.spansOf = spansOf;
    this.timelineOf = timelineOf;
    this.camOf = camOf || (() => null);
    this.onUnauthorized = onUnauthorized || (() => {});
    this.parts = []; // a minute of two feeds: its parts, each its own clip
    this.part = 0;
    this.at = 0; // the wall-clock time of the frame playing (ms)
    this.panel = $('#player');
    this.video = $('#video');
    this.title = $('#player-what');
    this.clock = $('#player-clock');
    this.status = $('#player-status');
    this.download = $('#player-download');
    this.url = '';
    this.abort = null;
    this.camera = '';
    this.from = 0;
    this.pieces = [];
    $('#player-close').addEventListener('click', () => this.close());
    $('#player-prev').addEventListener('click', () => this.play(this.camera, this.from - CLIP_MS));
    $('#player-next').addEventListener('click', () => this.play(this.camera, this.from + CLIP_MS));
    this.prevAct = $('#player-prev-act');
    this.nextAct = $('#player-next-act');
    this.prevAct.addEventListener('click', () => this.jump(-1));
    this.nextAct.addEventListener('click', () => this.jump(1));
    this.video.addEventListener('timeupdate', () => this.tick());
    this.video.addEventListener('ended', () => {
      if (this.part + 1 < this.parts.length) this.playPart(this.part + 1);
    });
    this.upload = $('#player-upload');
    this.upload.addEventListener('click', () => this.requestUpload());
    this.video.addEventListener('error', () => {
      if (this.video.getAttribute('src')) this.say('The browser cannot play this clip.', true);
    });
    fmt.onTZChange(() => { if (this.camera) this.heading(); this.tick(); });
  }

  say(text, bad = false, ...extra) {
    this.status.replaceChildren(text, ...extra);
    this.status.classList.toggle('bad', bad);
  }

  heading() {
    setText(this.title, `${this.camera} · ${fmt.dateTime(this.from)} – ${fmt.time(this.from + CLIP_MS)}`);
  }

  // jump plays the camera's next (dir 1) or previous (-1) activity
  // interval, from its start, relative to the frame playing.
  jump(dir) {
    const tl = this.timelineOf(this.camera);
    const now = this.at || this.from;
    const iv = tl && (dir > 0 ? tl.nextActivity(now) : tl.prevActivity(now));
    if (!iv) {
      this.say(`No ${dir > 0 ? 'later' : 'earlier'} activity on ${this.camera}'s timeline than ${fmt.time(now)}.`);
      return;
    }
    this.play(this.camera, iv.start, `Activity ${fmt.time(iv.start)} to ${fmt.time(iv.end)}:`);
  }

  // activityButtons enables the jumps there is somewhere to go to.
  activityButtons() {
    const tl = this.timelineOf(this.camera);
    const now = this.at || this.from;
    this.prevAct.disabled = !(tl && tl.prevActivity(now));
    this.nextAct.disabled = !(tl && tl.nextActivity(now));
  }

  // play loads the clip of [t, t + 1 min) of the camera and plays it.
  async play(camera, t, note = '') {
    if (this.abort) this.abort.abort();
    const ac = new AbortController();
    this.abort = ac;
    this.camera = camera;
    this.from = Math.floor(t);
    this.at = this.from;
    this.panel.dataset.from = String(this.from); // for scripts and tests: where the clip starts (ms)
    const to = this.from + CLIP_MS;
    this.panel.hidden = false;
    this.parts = [];
    this.part = 0;
    const cam = this.camOf(camera);
    this.upload.hidden = !(cam && cam.feeds && cam.feeds.length);
    this.upload.disabled = false;
    this.heading();
    this.activityButtons();
    this.say(`${note ? `${note} ` : ''}Loading the clip…`);
    this.panel.scrollIntoView({ block: 'nearest' });
    const q = `from=${api.enc(fmt.iso(this.from))}&to=${api.enc(fmt.iso(to))}`;
    try {
      await this.load(`/api/v1/cameras/${api.enc(camera)}/export?${q}`, this.from, to, note, ac);
    } catch (e) {
      if (e.name === 'AbortError') return;
      const b = e.body || {};
      if (e.status === 300 && Array.isArray(b.parts) && b.parts.length) {
        this.parts = b.parts;
        this.playPart(0, note);
        return;
      }
      if (e.status === 404 && (b.before || b.after)) {
        const near = b.after || b.before;
        const btn = h('button', { class: 'btn small', type: 'button', onclick: () => this.play(camera, Date.parse(near.from)) },
          icon('play'), `Play ${fmt.dateTime(near.from)}`);
        this.say(`No footage in this minute. The nearest ${b.after ? 'after' : 'before'} it starts at ${fmt.dateTime(near.from)}.`, false, ' ', btn);
        return;
      }
      this.say(`${e.status ? `HTTP ${e.status}: ` : ''}${e.message}`, true);
    }
  }

  // load fetches the clip at path (of [from, to)) and plays it.
  async load(path, from, to, note, ac) {
    const { blob, headers } = await api.blob(path, { signal: ac.signal, accept: 'video/mp4' });
    if (ac.signal.aborted) return;
    this.release();
    this.url = URL.createObjectURL(blob);
    this.video.src = this.url;
    this.download.href = this.url;
    const cd = /filename="([^"]+)"/.exec(headers.get('Content-Disposition') || '');
    this.download.download = cd ? cd[1] : `${this.camera}.mp4`;
    this.download.hidden = false;
    this.pieces = this.layout(this.camera, from, to);
    const footage = this.pieces.reduce((n, p) => n + (p.end - p.start), 0);
    const skipped = this.pieces.length > 1 ? `, ${this.pieces.length - 1} gap${this.pieces.length > 2 ? 's' : ''} skipped` : '';
    const sub = this.pieces.some((p) => p.feed === 'sub');
    const feed = sub ? ' · sub feed (lower resolution: the main copy is gone)' : this.pieces.some((p) => p.feed === 'main') ? ' · main feed' : '';
    const part = this.parts.length ? `Part ${this.part + 1} of ${this.parts.length} (a minute of two feeds, one clip each): ` : '';
    this.panel.dataset.feed = sub ? 'sub' : this.pieces.length && this.pieces[0].feed ? 'main' : '';
    this.say(`${note ? `${note} ` : ''}${part}${footage ? `${fmt.duration(footage / 1000)} of footage` : 'Clip'}${skipped}${feed} · ${fmt.bytes(blob.size)}.`);
    this.video.play().catch(() => { /* the controls are there */ });
  }

  // playPart plays part i of a minute of two feeds.
  async playPart(i, note = '') {
    if (this.abort) this.abort.abort();
    const ac = new AbortController();
    this.abort = ac;
    this.part = i;
    const p = this.parts[i];
    try {
      await this.load(p.export, Date.parse(p.from), Date.parse(p.to), note, ac);
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.say(`Part ${i + 1} of ${this.parts.length}: ${e.status ? `HTTP ${e.status}: ` : ''}${e.message}`, true);
    }
  }

  // requestUpload asks for the minute's main feed to go up first.
  async requestUpload() {
    const camera = this.camera;
    const q = `from=${api.enc(fmt.iso(this.from))}&to=${api.enc(fmt.iso(Math.min(this.from + CLIP_MS, Date.now())))}`;
    this.upload.disabled = true;
    try {
      const { body } = await api.json('POST', `/api/v1/cameras/${api.enc(camera)}/upload?${q}`);
      if (camera !== this.camera) return;
      this.say(body.waiting > 0
        ? `Requested: ${body.waiting} main-feed segment${body.waiting > 1 ? 's' : ''} of this minute go up ahead of everything else.`
        : body.uploaded > 0 ? 'The main feed of this minute is in S3 already.' : 'No main-feed footage of this minute is left on this box to send.');
    } catch (e) {
      if (e.status === 401) { this.onUnauthorized(); return; }
      this.upload.disabled = false;
      this.say(`Cannot request the upload: ${e.status ? `HTTP ${e.status}: ` : ''}${e.message}`, true);
    }
  }

  // layout: the footage of [from, to) as the clip plays it, gaps skipped.
  layout(camera, from, to) {
    const data = this.spansOf(camera);
    if (!data) return [];
    const out = [];
    for (const s of data.spans) {
      const a = Math.max(from, Date.parse(s.start));
      const b = Math.min(to, Date.parse(s.end));
      if (b > a) out.push({ start: a, end: b, feed: s.feed || '' });
    }
    return out;
  }

  // tick shows the wall-clock time of the frame playing.
  tick() {
    if (!this.url) { setText(this.clock, ''); return; }
    this.tickAt();
    this.activityButtons();
    setText(this.clock, `${fmt.dateTime(this.at)} (${fmt.zoneName()})`);
  }

  // tickAt maps the video's time to the wall clock, across skipped gaps.
  tickAt() {
    let left = this.video.currentTime * 1000;
    let at = this.from + left;
    for (const p of this.pieces) {
      const d = p.end - p.start;
      if (left <= d) { at = p.start + left; break; }
      left -= d;
      at = p.end;
    }
    this.at = at;
    this.panel.dataset.at = String(Math.round(at));
  }

  release() {
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = '';
  }

  close() {
    if (this.abort) this.abort.abort();
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    this.release();
    this.download.hidden = true;
    this.download.removeAttribute('href');
    this.upload.hidden = true;
    this.parts = [];
    this.camera = '';
    this.at = 0;
    this.panel.hidden = true;
    setText(this.clock, '');
  }
}
