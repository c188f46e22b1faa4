// api.js: cctvd's REST API as the page uses it. The bearer token is kept
// for this browser tab only (sessionStorage), sent on every call, and
// never put in a URL: stills, clips and log streams are fetched with the
// Authorization header too (an <img>, a <video> or an EventSource could
// not send it), then shown from blob: URLs or read as a stream.

const KEY = 'cctvd.token';
let token = sessionStorage.getItem(KEY) || '';

export function hasToken() { return token !== ''; }

export function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

// APIError is a refused or failed call: status 0 when cctvd did not answer.
export class APIError extends Error {
  constructor(status, message, body = null, retryAfter = 0) {
    super(message);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

function headers(accept) {
  const h = new Headers({ Accept: accept });
  if (token) h.set('Authorization', `Bearer ${token}`);
  return h;
}

// request does one call and returns the Response whatever its status.
// A state-changing call (POST) carries Content-Type: application/json, as
// the API's cross-site guard asks.
export async function request(method, path, { signal, accept = 'application/json', cache = 'no-store' } = {}) {
  const init = { method, headers: headers(accept), signal, cache, credentials: 'omit', redirect: 'error' };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers.set('Content-Type', 'application/json');
    init.body = '{}';
  }
  try {
    return await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, 'cctvd does not answer');
  }
}

async function failure(resp) {
  const text = await resp.text().catch(() => '');
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  const msg = (body && typeof body.error === 'string' && body.error) || `HTTP ${resp.status} ${resp.statusText}`.trim();
  return new APIError(resp.status, msg, body, Number(resp.headers.get('Retry-After')) || 0);
}

// json does a call and returns {status, body}; an error answer throws an
// APIError with the API's message and body.
export async function json(method, path, opts) {
  const resp = await request(method, path, opts);
  if (!resp.ok) throw await failure(resp);
  const text = await resp.text();
  return { status: resp.status, body: text ? JSON.parse(text) : null };
}

// blob fetches a binary answer (a still, a clip) with the token; cache
// 'no-cache' revalidates a copy the browser holds (ETag, 304).
export async function blob(path, { signal, accept = '*/*', cache = 'no-store' } = {}) {
  const resp = await request('GET', path, { signal, accept, cache });
  if (!resp.ok) throw await failure(resp);
  return { blob: await resp.blob(), headers: resp.headers };
}

// follow reads a Server-Sent Events answer: onEvent({id, event, data}) for
// each event until the stream ends (it returns) or signal aborts.
export async function follow(path, { signal, onOpen, onEvent }) {
  const resp = await request('GET', path, { signal, accept: 'text/event-stream' });
  if (!resp.ok) throw await failure(resp);
  if (onOpen) onOpen();
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const ev = { id: '', event: 'message', data: [] };
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue; // a comment: keep-alive
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let val = c < 0 ? '' : line.slice(c + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'data') ev.data.push(val);
          else if (field === 'id') ev.id = val;
          else if (field === 'event') ev.event = val;
        }
        if (ev.data.length) onEvent({ id: ev.id, event: ev.event, data: ev.data.join('\n') });
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

export const enc = encodeURIComponent;
