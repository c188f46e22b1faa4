// app.js: the page on the box. It signs in (when cctvd has an API token),
// then shows every camera (state, live figures, still, start and stop,
// timeline), the storage and upload panel, the player and the live log,
// all from the REST API, polled while signed in. Logging out forgets the
// token and everything shown.

import * as alerts from './alerts.js';
import * as api from './api.js';
import { $, h, icon, setAttr, setText } from './dom.js';
import * as fmt from './format.js';
import { LiveView } from './live.js';
import { LogPanel } from './log.js';
import { Player } from './player.js';
import { Timeline } from './timeline.js';

const POLL_CAMERAS = 2000;
const POLL_STATUS = 5000;
const POLL_SPANS = 60000;
// A still is asked for at most this often per camera, and only while its
// card is on screen and not live: each new still is an ffmpeg run on the box.
const STILL_EVERY = 30000;
const SPANS_AFTER_SEGMENT = 10000;

const STATES = {
  recording: 'Recording',
  starting: 'Starting',
  discovering: 'Finding the stream',
  backoff: 'Backoff',
  stalled: 'Stalled',
  'waiting-credentials': 'Waiting for the password',
  stopped: 'Stopped',
};

// The states "Retry now" applies to; waiting-credentials retries through
// POST .../retry (one login past the failed-login budget), the others
// through start.
const RETRY_STATES = ['backoff', 'stalled', 'waiting-credentials'];

let session = null; // {abort: AbortController} while signed in
let range = Number(sessionStorage.getItem('cctvd.range')) || 86400;
const cards = new Map(); // camera name -> Card
const grid = new Map(); // camera name -> {tile, view}, while the live grid is shown

// seen tells each card whether it is on screen.
const seen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const card = cards.get(e.target.dataset.camera);
    if (card) card.setVisible(e.isIntersecting);
  }
});

const log = new LogPanel({ onUnauthorized: () => refused() });
const player = new Player({ spansOf: (name) => cards.get(name)?.timeline.data, timelineOf: (name) => cards.get(name)?.timeline,
  camOf: (name) => cards.get(name)?.cam, onUnauthorized: () => refused() });

// ---- sign-in ---------------------------------------------------------

function showSignIn(message) {
  $('#app').hidden = true;
  $('#logout').hidden = true;
  $('#signin').hidden = false;
  const err = $('#signin-error');
  err.hidden = !message;
  setText(err, message || '');
  const input = $('#token');
  input.value = '';
  input.focus();
}

async function probe() {
  let resp;
  try {
    resp = await api.request('GET', '/api/v1/cameras');
  } catch {
    banner('cctvd does not answer. Trying again…');
    setTimeout(probe, 3000);
    return;
  }
  banner('');
  if (resp.status === 401) {
    const had = api.hasToken();
    api.setToken('');
    showSignIn(had ? 'The token of this tab was refused: sign in again.' : '');
    return;
  }
  if (!resp.ok) {
    banner(`cctvd answered HTTP ${resp.status}. Trying again…`);
    setTimeout(probe, 5000);
    return;
  }
  enter((await resp.json()).cameras || []);
}

async function signIn(e) {
  e.preventDefault();
  const input = $('#token');
  const btn = $('#signin-submit');
  const err = $('#signin-error');
  const t = input.value.trim();
  if (!t) return;
  btn.disabled = true;
  api.setToken(t);
  try {
    const { body } = await api.json('GET', '/api/v1/cameras');
    input.value = '';
    enter(body.cameras || []);
    $('#main').focus(); // the focus leaves the form that is gone
  } catch (ex) {
    api.setToken('');
    err.hidden = false;
    setText(err, ex.status === 401 ? 'That is not the API token this cctvd is configured with.' : `Cannot sign in: ${ex.message}`);
    input.select();
    input.focus();
  } finally {
    btn.disabled = false;
  }
}

// signOut forgets the token and every bit of data shown.
function signOut(message) {
  if (session) session.abort.abort();
  session = null;
  api.setToken('');
  log.stop();
  player.close();
  setGrid(false);
  for (const c of cards.values()) c.destroy();
  cards.clear();
  $('#camera-list').replaceChildren();
  renderStatus(null);
  alerts.render([]);
  setText($('#summary'), '');
  showSignIn(message);
}

function refused() {
  signOut('The token was refused (was it changed in the config?): sign in again.');
}

function banner(text) {
  const b = $('#banner');
  b.hidden = !text;
  setText(b, text);
}

// ---- the signed-in page -----------------------------------------------

function enter(cameras) {
  if (session) session.abort.abort();
  session = { abort: new AbortController() };
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#logout').hidden = !api.hasToken();
  updateCameras(cameras);
  const signal = session.abort.signal;
  every(POLL_CAMERAS, signal, pollCameras);
  every(POLL_STATUS, signal, pollStatus);
  every(POLL_STATUS, signal, alerts.poll);
  every(POLL_SPANS, signal, pollSpans);
  log.start();
}

// every runs fn now and then period after each run ends, until signal.
function every(period, signal, fn) {
  const run = async () => {
    if (signal.aborted) return;
    if (document.hidden) { // a tab in the background costs the box nothing
      setTimeout(run, period);
      return;
    }
    try {
      await fn(signal);
      banner('');
    } catch (e) {
      if (signal.aborted || e.name === 'AbortError') return;
      if (e.status === 401) { refused(); return; }
      banner(e.status ? `HTTP ${e.status}: ${e.message}` : 'Lost contact with cctvd. Trying again…');
    }
    if (!signal.aborted) setTimeout(run, period);
  };
  run();
}

async function pollCameras(signal) {
  const { body } = await api.json('GET', '/api/v1/cameras', { signal });
  updateCameras(body.cameras || []);
}

async function pollStatus(signal) {
  const { body } = await api.json('GET', '/api/v1/status', { signal });
  renderStatus(body);
}

async function pollSpans(signal) {
  await Promise.all([...cards.values()].filter((c) => c.visible && Date.now() - c.spansAt > POLL_SPANS - 5000).map((c) => c.loadSpans(signal)));
}

function updateCameras(cameras) {
  const list = $('#camera-list');
  const names = cameras.map((c) => c.name);
  for (const [name, card] of cards) {
    if (!names.includes(name)) { card.destroy(); cards.delete(name); }
  }
  cameras.forEach((cam, i) => {
    let card = cards.get(cam.name);
    if (!card) {
      card = new Card(cam.name);
      cards.set(cam.name, card);
      seen.observe(card.el);
    }
    if (list.children[i] !== card.el) list.insertBefore(card.el, list.children[i] || null);
    card.update(cam);
  });
  if (grid.size || $('#live-grid-btn').getAttribute('aria-pressed') === 'true') syncGrid(cameras);
  const empty = $('#no-cameras');
  empty.hidden = cameras.length > 0;
  log.setCameras(names);
  renderSummary(cameras);
}

function renderSummary(cameras) {
  const by = {};
  for (const c of cameras) by[c.state] = (by[c.state] || 0) + 1;
  const chips = Object.keys(STATES).filter((s) => by[s]).map((s) =>
    h('span', { class: `chip st-${s}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), `${by[s]} ${STATES[s].toLowerCase()}`));
  $('#summary').replaceChildren(h('span', { class: 'chip plain', text: `${cameras.length} camera${cameras.length === 1 ? '' : 's'}` }), ...chips);
}

// ---- a camera ---------------------------------------------------------

class Card {
  constructor(name) {
    this.name = name;
    this.cam = null;
    this.snapID = null;
    this.snapURL = '';
    this.snapBusy = false;
    this.snapAt = 0;
    this.spansAt = 0;
    this.spansSeg = null;
    this.visible = false;
    this.busy = false;
    const id = `cam-${name.replace(/[^A-Za-z0-9-]/g, '_')}`;
    this.timeline = new Timeline(name, { onPlay: (t, note) => player.play(name, t, note) });
    this.timeline.range = range;
    const facts = [];
    const f = (label, wide = false) => {
      const dd = h('dd', { text: '—' });
      facts.push(h('div', { class: wide ? 'fact wide' : 'fact' }, h('dt', { text: label }), dd));
      return dd;
    };
    this.fMode = f('Mode');
    this.fLive = f('Live');
    this.fRec = f('Records');
    this.fRestarts = f('Restarts · stalls');
    this.fSeg = f('Last segment', true);
    this.fSource = f('Stream', true);
    this.fFeeds = f('Feeds', true);
    this.fFeeds.parentElement.hidden = true;
    this.img = h('img', { alt: '', hidden: true });
    this.thumbNote = h('span', { class: 'thumb-note', text: 'No still yet' });
    this.thumbTime = h('span', { class: 'thumb-time', hidden: true });
    this.live = null;
    this.liveBtn = h('button', { class: 'btn small thumb-live', type: 'button', 'data-act': 'live', 'aria-pressed': 'false', 'aria-label': `Watch ${name} live`, onclick: () => this.toggleLive() },
      icon('play'), h('span', { text: 'Live' }));
    this.img.addEventListener('click', () => this.toggleLive());
    this.stateEl = h('span', { class: 'state' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'state-text' }));
    this.since = h('span', { class: 'since' });
    this.error = h('div', { class: 'cam-error', hidden: true });
    this.stopBtn = h('button', { class: 'btn', type: 'button', 'data-act': 'stop', onclick: () => this.act('stop') }, icon('stop'), h('span', { text: 'Stop' }));
    this.startBtn = h('button', { class: 'btn', type: 'button', 'data-act': 'start',
      onclick: () => this.act(this.cam && this.cam.state === 'waiting-credentials' ? 'retry' : 'start') }, icon('play'), h('span', { text: 'Start' }));
    this.logBtn = h('button', { class: 'btn ghost', type: 'button', 'data-act': 'log', 'aria-controls': 'log', onclick: () => log.open(name) }, icon('log'), h('span', { text: 'Log' }));
    this.result = h('span', { class: 'result', role: 'status' });
    this.answer = h('pre');
    this.answerBox = h('details', { class: 'answer', hidden: true }, h('summary', { text: 'API answer' }), this.answer);
    this.el = h('article', { class: 'cam card', id, 'aria-labelledby': `${id}-name`, 'data-camera': name },
      this.thumb = h('div', { class: 'thumb' }, this.img, this.thumbNote, this.thumbTime, this.liveBtn),
      h('div', { class: 'cam-body' },
        h('header', { class: 'cam-head' }, h('h3', { id: `${id}-name`, text: name }), this.stateEl, this.since),
        h('dl', { class: 'facts' }, facts),
        this.error,
        h('div', { class: 'cam-actions' }, this.stopBtn, this.startBtn, this.logBtn, this.result),
        this.answerBox),
      this.timeline.el);
  }

  setVisible(v) {
    this.visible = v;
    if (v && this.cam) this.update(this.cam);
  }

  // refresh loads what is due while the card is on screen: the timeline
  // (every minute, and soon after a new segment), the still (for a newer
  // segment, at most every STILL_EVERY).
  refresh() {
    if (!session || !this.visible) return;
    const signal = session.abort.signal;
    const now = Date.now();
    const seg = this.cam && this.cam.lastSegment;
    const spansDue = now - this.spansAt > POLL_SPANS || (seg && seg.id !== this.spansSeg && now - this.spansAt > SPANS_AFTER_SEGMENT);
    if (spansDue && !this.spansBusy) {
      this.spansSeg = seg ? seg.id : null;
      this.loadSpans(signal).catch(() => { /* the next poll says why */ });
    }
    // A recording camera's still is of the segment being written: asked
    // for again every STILL_EVERY (304 when there is no newer keyframe).
    const recording = this.cam && this.cam.state === 'recording';
    if ((recording || (seg && seg.id !== this.snapID)) && !this.live && !this.snapBusy && now - this.snapAt > STILL_EVERY) {
      this.loadStill(seg ? seg.id : 'open', signal);
    }
  }

  // toggleLive turns the still into the camera's live picture, and back.
  toggleLive() {
    if (this.live) {
      this.live.destroy();
      this.live = null;
    } else if (this.cam) {
      this.live = new LiveView(this.cam, { onUnauthorized: () => refused() });
      this.thumb.insertBefore(this.live.el, this.liveBtn);
      this.live.show();
    }
    const on = !!this.live;
    this.thumb.classList.toggle('is-live', on);
    setAttr(this.liveBtn, 'aria-pressed', String(on));
    setAttr(this.liveBtn, 'aria-label', on ? `Back to ${this.name}'s still` : `Watch ${this.name} live`);
    setText(this.liveBtn.lastChild, on ? 'Still' : 'Live');
  }

  destroy() {
    if (this.live) this.live.destroy();
    this.live = null;
    seen.unobserve(this.el);
    if (this.snapURL) URL.revokeObjectURL(this.snapURL);
    this.snapURL = '';
    this.el.remove();
  }

  update(cam) {
    this.cam = cam;
    if (this.live) this.live.update(cam);
    const now = Date.now();
    this.el.dataset.state = cam.state;
    this.el.dataset.desired = cam.desired;
    this.stateEl.className = `state st-${cam.state}`;
    setAttr(this.stateEl, 'title', `state ${cam.state}, desired ${cam.desired}`);
    setText(this.stateEl.lastChild, STATES[cam.state] || cam.state);
    let since = fmt.isSet(cam.since) ? `for ${fmt.duration((now - Date.parse(cam.since)) / 1000)} · since ${fmt.dateTime(cam.since)}` : '';
    if ((cam.state === 'backoff' || cam.state === 'waiting-credentials') && fmt.isSet(cam.nextAttempt)) {
      since += ` · next try ${Date.parse(cam.nextAttempt) > now ? `in ${fmt.duration((Date.parse(cam.nextAttempt) - now) / 1000)}` : 'now'}`;
    }
    if (cam.state === 'stopped' && cam.desired === 'stopped') since += ' · by an operator';
    setText(this.since, since);

    setText(this.fMode, cam.mode || '—');
    const live = cam.live;
    setText(this.fLive, cam.state === 'recording' && live
      ? [`${fmt.num(live.fps)} fps`, live.bitrateKbps > 0 ? fmt.kbps(live.bitrateKbps) : '', `speed ${fmt.num(live.speed, 2)}×`,
        live.dropFrames ? `${live.dropFrames} dropped` : ''].filter(Boolean).join(' · ')
      : '—');
    const c = cam.config || {};
    setText(this.fRec, `${(c.resolution || '?').replace('x', '×')} @ ${fmt.num(c.frameRate, 2)} fps · ${fmt.duration(c.videoDuration || 0)} files · feed ${c.videoFeedId || '?'}`);
    setText(this.fRestarts, `${cam.restarts} · ${cam.stalls}`);
    setText(this.fSource, [cam.source, cam.streamUrl || c.source].filter(Boolean).join(': ') || '—');
    const seg = cam.lastSegment;
    if (seg) {
      const up = seg.upload === 'uploaded' ? (seg.local === 'present' ? 'uploaded' : 'in S3 only') : `${seg.upload === 'uploading' ? 'uploading' : 'awaiting upload'}`;
      setText(this.fSeg, `${fmt.dateTime(seg.start)} – ${fmt.time(seg.end)} · ${fmt.duration(seg.durationSeconds)} · ${fmt.bytes(seg.bytes)} · ${up}`);
    } else {
      setText(this.fSeg, 'none yet');
    }
    // A camera with a sub stream: each feed's state and how far back it
    // reaches (retention deletes the main footage first).
    const feeds = cam.feeds || [];
    this.fFeeds.parentElement.hidden = feeds.length === 0;
    setText(this.fFeeds, feeds.map((fd) => {
      const back = fmt.isSet(fd.local) ? `on this box from ${fmt.dateTime(fd.local)}` : 'none on this box';
      const s3 = fmt.isSet(fd.remote) ? `, in S3 from ${fmt.dateTime(fd.remote)}` : '';
      return `${fd.feed} (${fd.feedId}) ${STATES[fd.state] || fd.state}: ${back}${s3}`;
    }).join(' · '));
    const errs = [];
    if (cam.state === 'waiting-credentials') {
      const win = fmt.goSeconds(c.failedLoginWindow);
      errs.push(`The camera refused the user name or password ${cam.failedLogins || 0} time${cam.failedLogins === 1 ? '' : 's'}` +
        `${win ? ` in ${fmt.duration(win)}` : ''}: cctvd waits, so that the camera does not lock this box out (cameras do after about 5).` +
        ' Put the right password in the config and reload (it is tried at once), or Retry now: one more login, refused if the password is still wrong.');
    }
    if (cam.lastError) errs.push(`Last error: ${cam.lastError}`);
    if (cam.discoveryError && cam.discoveryError !== cam.lastError) errs.push(`Discovery: ${cam.discoveryError}`);
    if (cam.lastExit && cam.lastExit.reason !== 'stopped' && cam.state !== 'recording') {
      const x = cam.lastExit;
      errs.push(`Last exit ${fmt.dateTime(x.at)}: ${x.reason}${x.signal ? ` (${x.signal})` : x.code ? ` (code ${x.code})` : ''}`);
    }
    this.error.hidden = errs.length === 0;
    this.error.replaceChildren(...errs.map((t) => h('p', { text: t })));

    if (!this.busy) {
      this.stopBtn.disabled = cam.desired === 'stopped';
      const retry = cam.desired === 'running' && RETRY_STATES.includes(cam.state);
      setText(this.startBtn.lastChild, retry ? 'Retry now' : 'Start');
      this.startBtn.dataset.act = cam.state === 'waiting-credentials' ? 'retry' : 'start';
      this.startBtn.disabled = cam.desired === 'running' && !retry;
    }
    this.timeline.setLive(cam.state === 'recording' && cam.uptimeSeconds > 0 ? now - cam.uptimeSeconds * 1000 : 0);
    this.timeline.render();
    if (!seg && this.snapID === null) setText(this.thumbNote, 'No footage yet');
    this.refresh();
  }

  async loadStill(id, signal) {
    this.snapBusy = true;
    this.snapAt = Date.now();
    try {
      const { blob, headers } = await api.blob(`/api/v1/cameras/${api.enc(this.name)}/snapshot.jpg`, { signal, accept: 'image/jpeg', cache: 'no-cache' });
      if (signal.aborted) return;
      const url = URL.createObjectURL(blob);
      this.img.onload = () => {
        if (this.snapURL && this.snapURL !== url) URL.revokeObjectURL(this.snapURL);
        this.snapURL = url;
      };
      this.img.src = url;
      this.img.alt = `Still of ${this.name} from ${headers.get('X-Segment-Open') ? 'the segment being recorded' : 'its newest segment on this box'}`;
      this.img.hidden = false;
      this.thumbNote.hidden = true;
      const at = headers.get('Last-Modified');
      this.thumbTime.hidden = !at;
      if (at) setText(this.thumbTime, fmt.dateTime(Date.parse(at)));
      this.snapID = id;
    } catch (e) {
      if (signal.aborted || e.name === 'AbortError') return;
      if (e.status === 401) { refused(); return; }
      this.snapID = id; // not again until a newer segment
      this.img.hidden = !this.snapURL;
      this.thumbNote.hidden = !!this.snapURL;
      setText(this.thumbNote, e.status === 404 ? 'No segment on this box' : 'No still');
    } finally {
      this.snapBusy = false;
    }
  }

  async loadSpans(signal) {
    const to = Date.now();
    this.spansAt = to;
    this.spansBusy = true;
    const q = `from=${api.enc(fmt.iso(to - 86400 * 1000))}&to=${api.enc(fmt.iso(to))}`;
    try {
      const [spans, act] = await Promise.all([
        api.json('GET', `/api/v1/cameras/${api.enc(this.name)}/spans?${q}`, { signal }),
        api.json('GET', `/api/v1/cameras/${api.enc(this.name)}/activity?${q}`, { signal }).catch((e) => {
          if (e.name === 'AbortError' || e.status === 401) throw e;
          return null; // the timeline without it (the catalog busy): the next poll asks again
        }),
      ]);
      if (act) this.timeline.setActivity(act.body.intervals);
      this.timeline.set(spans.body);
    } catch (e) {
      if (e.status === 404) return; // removed meanwhile
      throw e;
    } finally {
      this.spansBusy = false;
    }
  }

  // act presses start or stop, shows the API's answer, and refreshes.
  async act(what) {
    this.busy = true;
    this.stopBtn.disabled = true;
    this.startBtn.disabled = true;
    this.result.className = 'result pending';
    const words = { stop: ['Stopping… (ffmpeg finalises the open segment)', 'Stopped', 'Stop'],
      start: ['Starting…', 'Started', 'Start'], retry: ['Retrying: one more login…', 'Retried', 'Retry'] }[what];
    setText(this.result, words[0]);
    try {
      const { status, body } = await api.json('POST', `/api/v1/cameras/${api.enc(this.name)}/${what}`);
      this.result.className = 'result ok';
      setText(this.result, `${fmt.time(new Date())} ${words[1]}: HTTP ${status}, state ${body.state}, desired ${body.desired}`);
      this.showAnswer(body);
      this.update(body);
      if (session) {
        this.loadSpans(session.abort.signal).catch(() => {});
        pollCameras(session.abort.signal).catch(() => {});
      }
    } catch (e) {
      if (e.status === 401) { refused(); return; }
      this.result.className = 'result bad';
      setText(this.result, `${fmt.time(new Date())} ${words[2]} failed: ${e.status ? `HTTP ${e.status}: ` : ''}${e.message}`);
      this.showAnswer(e.body);
    } finally {
      this.busy = false;
      if (this.cam) this.update(this.cam);
    }
  }

  showAnswer(body) {
    this.answerBox.hidden = !body;
    setText(this.answer, body ? JSON.stringify(body, null, 2) : '');
  }
}

// ---- storage and upload -------------------------------------------------

function renderStatus(st) {
  const box = $('#storage-body');
  if (!st) { box.replaceChildren(); return; }
  const s = st.storage || {};
  const u = st.uploader || {};
  const b = st.backlog || {};
  const used = s.usedBytes || 0;
  const limit = s.limitBytes || 0;
  const fill = h('div', { class: 'meter-fill' });
  const frac = limit > 0 ? Math.min(1, used / limit) : 0;
  fill.style.width = `${(frac * 100).toFixed(2)}%`;
  fill.classList.toggle('high', frac >= 0.9);
  const disk = s.totalBytes > 0 ? h('div', { class: 'meter-fill disk' }) : null;
  const diskFrac = s.totalBytes > 0 ? Math.min(1, (s.totalBytes - s.freeBytes) / s.totalBytes) : 0;
  if (disk) disk.style.width = `${(diskFrac * 100).toFixed(2)}%`;
  const row = (label, value, cls = '') => h('div', { class: `fact ${cls}` }, h('dt', { text: label }), h('dd', { text: value }));
  const upState = u.state || 'idle';
  const lim = st.uploadLimit;
  const plan = u.plan || {};
  const kids = [
    h('h3', { text: 'Recordings (savePath)' }),
    h('div', {
      class: 'meter', role: 'meter', 'aria-label': 'savePath used of its limit',
      'aria-valuemin': '0', 'aria-valuemax': String(limit), 'aria-valuenow': String(used),
      'aria-valuetext': `${fmt.bytes(used)} of ${fmt.bytes(limit)}`,
    }, fill),
    h('p', { class: 'meter-label' }, h('strong', { text: fmt.bytes(used) }), ` of ${fmt.bytes(limit)} limit · ${fmt.percent(used, limit)}`),
    h('h3', { text: 'Filesystem' }),
    disk ? h('div', {
      class: 'meter', role: 'meter', 'aria-label': 'filesystem used',
      'aria-valuemin': '0', 'aria-valuemax': String(s.totalBytes), 'aria-valuenow': String(s.totalBytes - s.freeBytes),
      'aria-valuetext': `${fmt.bytes(s.freeBytes)} free of ${fmt.bytes(s.totalBytes)}`,
    }, disk) : null,
    h('p', { class: 'meter-label' }, h('strong', { text: fmt.bytes(s.freeBytes) }), ` free of ${fmt.bytes(s.totalBytes)} · floor ${fmt.bytes(s.floorBytes)}`),
    h('dl', { class: 'facts' },
      row('Deleted since start', `${s.deletedUploaded || 0} uploaded · ${s.deletedNotUploaded || 0} not uploaded`, s.deletedNotUploaded ? 'warn' : ''),
      row('Last cleanup check', fmt.isSet(s.lastDecision) ? fmt.dateTime(s.lastDecision) : '—')),
    s.lastError ? h('div', { class: 'cam-error' }, h('p', { text: `Retention: ${s.lastError}` })) : null,
    h('h3', {}, 'Upload to S3 ', h('span', { class: `state up-${upState}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), upState)),
    h('dl', { class: 'facts' },
      row('Backlog', `${b.segments || 0} segment${b.segments === 1 ? '' : 's'} · ${fmt.bytes(b.bytes || 0)}`),
      row('Oldest waiting', b.segments ? `${fmt.duration(b.oldestAgeSeconds || 0)}${fmt.isSet(b.oldest) ? ` (since ${fmt.dateTime(b.oldest)})` : ''}` : '—', b.oldestAgeSeconds > 3600 ? 'warn' : ''),
      lim ? row('Upload cap', capText(lim), lim.paused ? 'warn' : '') : null,
      row('Achieved rate', `${u.achievedMbps ? `${rate(u.achievedMbps)} up` : 'not measured yet'} · ${rate(u.recordedMbps || 0)} recorded`),
      b.footageSeconds ? row('Footage waiting', fmt.duration(b.footageSeconds)) : null,
      row('Uploading now', String(u.inFlight || 0)),
      row('Since start', `${u.uploaded || 0} uploaded · ${u.failures || 0} failed`),
      row('Last upload', fmt.isSet(u.lastSuccess) ? fmt.dateTime(u.lastSuccess) : '—'),
      fmt.isSet(u.pausedUntil) && Date.parse(u.pausedUntil) > Date.now() ? row('Paused until', fmt.dateTime(u.pausedUntil), 'warn') : null),
    plan.message ? h('p', { class: `upload-plan plan-${plan.state}`, id: 'upload-plan', role: plan.state === 'deficit' ? 'alert' : null, text: plan.message }) : null,
    plan.skipped || plan.deletedWaiting ? h('p', { class: 'upload-plan plan-deficit',
      text: `Since start: ${plan.skipped || 0} segment${plan.skipped === 1 ? '' : 's'} left because ${plan.skipped === 1 ? 'it' : 'they'} could not reach S3 before deletion · ${plan.deletedWaiting || 0} deleted before upload while a later one went up.` }) : null,
    u.lastError ? h('div', { class: 'cam-error' }, h('p', { text: `Last upload error: ${u.lastError}` })) : null,
  ];
  box.replaceChildren(...kids.filter(Boolean));
}

// rate is a rate in Mbit/s, in the unit a person reads it in.
function rate(mbps) {
  return mbps >= 1 ? `${fmt.num(mbps)} Mbit/s` : `${Math.round(mbps * 1000)} kbit/s`;
}

// capText says the upload cap in force, where it comes from, and until when.
function capText(l) {
  const what = l.paused ? 'paused' : l.maxUploadMbps ? rate(l.maxUploadMbps) : 'none';
  const from = { config: 'from the config', schedule: 'from the schedule', api: 'set for this run' }[l.source] || '';
  const until = fmt.isSet(l.until) ? ` until ${fmt.dateTime(l.until)}` : '';
  return `${what} (${from}${until})`;
}

// ---- the live grid: every camera live -----------------------------------

function setGrid(on) {
  const btn = $('#live-grid-btn');
  setAttr(btn, 'aria-pressed', String(on));
  $('#live-grid').hidden = !on;
  if (on) {
    syncGrid([...cards.values()].map((c) => c.cam).filter(Boolean));
    return;
  }
  for (const g of grid.values()) g.view.destroy();
  grid.clear();
  $('#live-tiles').replaceChildren();
}

// syncGrid has a tile for each camera, in the list's order.
function syncGrid(cameras) {
  const box = $('#live-tiles');
  const names = cameras.map((c) => c.name);
  for (const [name, g] of grid) {
    if (!names.includes(name)) { g.view.destroy(); g.tile.remove(); grid.delete(name); }
  }
  cameras.forEach((cam, i) => {
    let g = grid.get(cam.name);
    if (!g) {
      const view = new LiveView(cam, { onUnauthorized: () => refused() });
      g = { view, tile: h('figure', { class: 'live-tile', 'data-camera': cam.name }, view.el, h('figcaption', { text: cam.name })) };
      grid.set(cam.name, g);
      box.insertBefore(g.tile, box.children[i] || null);
      view.show();
    } else if (box.children[i] !== g.tile) {
      box.insertBefore(g.tile, box.children[i] || null);
    }
    g.view.update(cam);
  });
}

// ---- wiring -------------------------------------------------------------

function setRange(seconds) {
  range = seconds;
  sessionStorage.setItem('cctvd.range', String(seconds));
  for (const b of document.querySelectorAll('#zoom button')) setAttr(b, 'aria-pressed', String(Number(b.dataset.range) === seconds));
  for (const c of cards.values()) c.timeline.setRange(seconds);
}

function setTZ(utc) {
  fmt.setUTC(utc);
  const b = $('#tz');
  setAttr(b, 'aria-pressed', String(utc));
  setText(b.lastChild, `Times: ${fmt.zoneName()}`);
  for (const c of cards.values()) if (c.cam) c.update(c.cam);
  if (session) pollStatus(session.abort.signal).catch(() => {});
}

$('#signin-form').addEventListener('submit', signIn);
$('#logout').addEventListener('click', () => signOut('Logged out: this tab no longer holds the token.'));
$('#tz').addEventListener('click', () => setTZ(!fmt.isUTC()));
$('#live-grid-btn').addEventListener('click', () => setGrid($('#live-grid-btn').getAttribute('aria-pressed') !== 'true'));
for (const b of document.querySelectorAll('#zoom button')) b.addEventListener('click', () => setRange(Number(b.dataset.range)));
setText($('#host'), location.host);
setRange(range);
setTZ(fmt.isUTC());
probe();
