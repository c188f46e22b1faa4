// alerts.js: the open conditions at the top of the page (a camera down,
// uploads behind, the disk near its limit or missing), worst first, from
// GET /api/v1/alerts. Nothing shows while all is well.

import * as api from './api.js';
import { $, h, setText } from './dom.js';
import * as fmt from './format.js';

const TITLES = {
  'camera-down': 'Camera down',
  'upload-backlog': 'Uploads behind',
  'upload-failing': 'Uploads failing',
  'upload-deficit': 'Footage will be lost before upload',
  'disk-near-limit': 'Disk near its limit',
  'disk-missing': 'Recordings disk missing',
};
const RANK = { critical: 0, warning: 1, info: 2 };

export async function poll(signal) {
  const { body } = await api.json('GET', '/api/v1/alerts?limit=1', { signal });
  render(body.open || []);
}

// render shows the open conditions, or hides the banner when there are
// none (and on sign-out, with render([])).
export function render(open) {
  const box = $('#alerts');
  const list = $('#alerts-list');
  const sorted = [...open].sort((a, b) => (RANK[a.severity] ?? 3) - (RANK[b.severity] ?? 3) || Date.parse(a.since) - Date.parse(b.since));
  list.replaceChildren(...sorted.map((c) => h('li', { class: `alert ${c.severity}`, 'data-type': c.type, 'data-camera': c.camera || '' },
    h('strong', {}, (TITLES[c.type] || c.type) + (c.camera ? `: ${c.camera}` : '')),
    h('span', { class: 'since' }, ` since ${fmt.dateTime(c.since)} `),
    h('span', { class: 'what' }, c.message))));
  setText($('#alerts-title'), sorted.length === 1 ? '1 problem needs a person' : `${sorted.length} problems need a person`);
  box.hidden = sorted.length === 0;
}
