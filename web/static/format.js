// format.js: how the page writes times, durations, sizes and rates.
// Times are the browser's local time unless the operator picks UTC (the
// time zone of segment names); the choice lasts for the tab.

let utc = sessionStorage.getItem('cctvd.utc') === '1';
const tzListeners = new Set();

export function isUTC() { return utc; }

export function setUTC(v) {
  utc = v;
  sessionStorage.setItem('cctvd.utc', v ? '1' : '0');
  tzListeners.forEach((fn) => fn());
}

export function onTZChange(fn) { tzListeners.add(fn); }

// zoneName is the time zone the page shows: "UTC", or "local, UTC+01:00".
export function zoneName() {
  if (utc) return 'UTC';
  return `local, ${offsetName()}`;
}

function offsetName() {
  const off = -new Date().getTimezoneOffset();
  const sign = off < 0 ? '−' : '+';
  const a = Math.abs(off);
  return `UTC${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

function parts(d) {
  return utc
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds() }
    : { y: d.getFullYear(), mo: d.getMonth(), d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds() };
}

const p2 = (n) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function toDate(t) { return t instanceof Date ? t : new Date(t); }

// time: 14:03:05
export function time(t) {
  const p = parts(toDate(t));
  return `${p2(p.h)}:${p2(p.mi)}:${p2(p.s)}`;
}

// timeMs: 14:03:05.123
export function timeMs(t) {
  const p = parts(toDate(t));
  return `${p2(p.h)}:${p2(p.mi)}:${p2(p.s)}.${String(p.ms).padStart(3, '0')}`;
}

// hm: 14:03
export function hm(t) {
  const p = parts(toDate(t));
  return `${p2(p.h)}:${p2(p.mi)}`;
}

// dateTime: 6 Jan 14:03:05, the date left out when it is today.
export function dateTime(t) {
  const d = toDate(t);
  const p = parts(d);
  const n = parts(new Date());
  const day = p.y === n.y && p.mo === n.mo && p.d === n.d ? '' : `${p.d} ${MONTHS[p.mo]} `;
  return day + time(d);
}

// isValid: an API time that is set (Go's zero time is year 1).
export function isSet(t) {
  if (!t) return false;
  const d = toDate(t);
  return !Number.isNaN(d.getTime()) && d.getUTCFullYear() > 1970;
}

// duration: 45 s, 5 min, 2 h 05 min, 3 d 4 h.
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 && s < 600 ? ` ${s % 60} s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${p2(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// goSeconds reads a Go duration as the API writes it ("30m0s", "1h0m0s",
// "1.5s") in seconds; 0 for anything else.
export function goSeconds(d) {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?$/.exec(d || '');
  if (!m || d === '') return 0;
  return (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
}

// ago: "12 s ago", from an API time.
export function ago(t, now = Date.now()) {
  return `${duration((now - toDate(t).getTime()) / 1000)} ago`;
}

// bytes: decimal units, as the config's GB (10⁹ bytes).
export function bytes(n) {
  if (n == null || Number.isNaN(n)) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${units[i]}`;
}

// kbps: 412 kbit/s, 4.1 Mbit/s.
export function kbps(k) {
  if (!(k > 0)) return '—';
  return k >= 1000 ? `${(k / 1000).toFixed(1)} Mbit/s` : `${Math.round(k)} kbit/s`;
}

export function num(n, digits = 1) {
  return Number.isFinite(n) ? n.toFixed(digits).replace(/\.0+$/, '') : '—';
}

export function percent(part, whole) {
  if (!(whole > 0)) return '—';
  const p = (100 * part) / whole;
  return `${p < 10 ? p.toFixed(1) : Math.round(p)} %`;
}

// iso is an RFC 3339 time for the API, to the millisecond.
export function iso(ms) { return new Date(ms).toISOString(); }
