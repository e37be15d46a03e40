// The recordings page (/recordings) for admins and providers: find visit
// recordings by visit, patient and date; see each participant recording's
// metadata and its parts (chunks) with downloads; play a visit's
// recordings side by side (player.js); admins place and release legal
// holds. Providers see only their own visits' recordings (the API filters).
//
// Every list, metadata view, playback range and download is audited by
// the server, so the page fetches a recording's parts only when asked
// (details or playback), not for every row.
//
// A recorder that dies mid-visit is replaced by another, which records each
// participant into a new piece: the server lists the pieces of one
// participant's recording with series_id, part and parts, and the gap
// before each. The page shows them together, in order, as parts of one
// recording with the gap stated, and plays them as one participant.

import { get, homeFor, post } from './api.js';
import { busy, byId, confirmAction, h, say, shortID, when } from './dom.js';
import { patientLookup } from './patient-lookup.js';
import { SyncPlayer, clock } from './player.js';
import { problem, startStaffPage } from './staff.js';

/**
 * @typedef {object} Recording
 * @property {string} id
 * @property {string} visit_id
 * @property {string} [patient_id]
 * @property {string} participant_id
 * @property {string} participant_role
 * @property {string} status  recording | finalizing | complete | incomplete | deleted
 * @property {string} started_at
 * @property {string} [ended_at]
 * @property {number} size
 * @property {boolean} legal_hold
 * @property {string} delete_after
 * @property {string} [deleted_at]
 * @property {string} series_id   the joined recording this piece is part of (its first piece's ID)
 * @property {number} part        this piece's place (1-based) of parts
 * @property {number} parts       pieces of the joined recording (more than 1 after a recorder takeover)
 * @property {number} gap_before_ms  media missing between the previous piece and this one
 *
 * @typedef {Recording & {chunks: import('./player.js').Chunk[]}} RecordingView
 */

const ui = {
  brand: /** @type {HTMLAnchorElement} */ (byId('brand')),
  navAdmin: byId('nav-admin'),
  navProvider: byId('nav-provider'),
  status: byId('status'),
  error: byId('error'),
  filters: /** @type {HTMLFormElement} */ (byId('filters')),
  visit: /** @type {HTMLInputElement} */ (byId('f-visit')),
  patient: /** @type {HTMLInputElement} */ (byId('f-patient')),
  from: /** @type {HTMLInputElement} */ (byId('f-from')),
  to: /** @type {HTMLInputElement} */ (byId('f-to')),
  submit: /** @type {HTMLButtonElement} */ (byId('f-submit')),
  clear: /** @type {HTMLButtonElement} */ (byId('f-clear')),
  resultsStatus: byId('results-status'),
  results: byId('results'),
  player: byId('player'),
  playerTitle: byId('player-title'),
  playerClose: /** @type {HTMLButtonElement} */ (byId('player-close')),
  playerNote: byId('player-note'),
  playerVideos: byId('player-videos'),
  play: /** @type {HTMLButtonElement} */ (byId('player-play')),
  seek: /** @type {HTMLInputElement} */ (byId('player-seek')),
  time: byId('player-time'),
  playerStatus: byId('player-status'),
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATUS = {
  recording: ['Recording now', 'tag-warn'],
  finalizing: ['Finishing', 'tag-warn'],
  complete: ['Complete', 'tag-ok'],
  incomplete: ['Incomplete', 'tag-danger'],
  deleted: ['Deleted', ''],
};

let isAdmin = false;
/** @type {Map<string, RecordingView>} metadata already fetched (each fetch is audited) */
const views = new Map();
/** @type {SyncPlayer|null} */
let player = null;
/** @type {HTMLElement|null} the button that opened the player */
let playerOpener = null;

/** @param {string} role */
function roleLabel(role) {
  if (role === 'provider') return 'Provider';
  if (role === 'patient') return 'Patient';
  return 'Participant';
}

/** @param {number} n bytes */
function size(n) {
  if (n < 1000) return `${n} bytes`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** A local date (YYYY-MM-DD) as an RFC 3339 instant, plus days. @param {string} d @param {number} [plus] */
function dayStart(d, plus = 0) {
  const [y, m, day] = d.split('-').map(Number);
  return new Date(y, m - 1, day + plus).toISOString();
}

/** @param {HTMLInputElement} input @param {string} msg */
function fieldError(input, msg) {
  const id = input.id + '-error';
  let p = document.getElementById(id);
  if (!msg) {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
    if (p) p.remove();
    return;
  }
  if (!p) {
    p = h('p', { id, className: 'hint field-error' });
    input.after(p);
  }
  p.textContent = msg;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', id);
}

/** Checks the filters; returns the query or null (with the fields marked). */
function query() {
  const q = new URLSearchParams();
  let ok = true;
  for (const [input, name] of /** @type {[HTMLInputElement, string][]} */ ([[ui.visit, 'visit_id'], [ui.patient, 'patient_id']])) {
    const v = input.value.trim();
    const bad = v !== '' && !UUID.test(v);
    fieldError(input, bad ? 'Paste the whole ID (36 characters, like 3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13).' : '');
    if (bad) ok = false;
    else if (v) q.set(name, v.toLowerCase());
  }
  const badRange = ui.from.value && ui.to.value && ui.to.value < ui.from.value;
  fieldError(ui.to, badRange ? 'The end date is before the start date.' : '');
  if (badRange) ok = false;
  if (ui.from.value) q.set('from', dayStart(ui.from.value));
  if (ui.to.value) q.set('to', dayStart(ui.to.value, 1));
  q.set('limit', '200');
  if (!ok) {
    const first = /** @type {HTMLElement|null} */ (ui.filters.querySelector('[aria-invalid="true"]'));
    if (first) first.focus();
    return null;
  }
  return q;
}

/** Keeps the filters in the address bar (opaque IDs and dates only). */
function remember() {
  const q = new URLSearchParams();
  if (ui.visit.value.trim()) q.set('visit', ui.visit.value.trim());
  if (ui.patient.value.trim()) q.set('patient', ui.patient.value.trim());
  if (ui.from.value) q.set('from', ui.from.value);
  if (ui.to.value) q.set('to', ui.to.value);
  const s = q.toString();
  history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
}

async function search() {
  const q = query();
  if (!q) return;
  remember();
  say(ui.error, '');
  ui.resultsStatus.textContent = 'Searching…';
  /** @type {{recordings: Recording[]}} */
  let res;
  try {
    res = await get('/api/v1/recordings?' + q.toString());
  } catch (err) {
    ui.resultsStatus.textContent = '';
    problem(err);
    return;
  }
  render(res.recordings || []);
}

/** @param {Recording[]} recs newest first */
function render(recs) {
  /** @type {Map<string, Recording[]>} */
  const byVisit = new Map();
  for (const r of recs) {
    const list = byVisit.get(r.visit_id) || [];
    list.push(r);
    byVisit.set(r.visit_id, list);
  }
  const n = recs.length;
  ui.resultsStatus.textContent = n === 0
    ? 'No recordings match.'
    : `${n} ${n === 1 ? 'recording' : 'recordings'} from ${byVisit.size} ${byVisit.size === 1 ? 'visit' : 'visits'}${n === 200 ? ' (the first 200: narrow the search to see more)' : ''}.`;
  ui.results.replaceChildren(...[...byVisit].map(([visit, list]) => visitCard(visit, list)));
}

/** @param {string} visit @param {Recording[]} list */
function visitCard(visit, list) {
  const titleID = `visit-${visit}`;
  const first = list.reduce((a, b) => (a.started_at < b.started_at ? a : b));
  const playable = list.filter((r) => r.status !== 'deleted');
  const play = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: 'primary', dataset: { action: 'play' }, disabled: playable.length === 0 },
    'Play visit', h('span', { className: 'sr-only' }, ` ${shortID(visit)}`)));
  play.addEventListener('click', () => busy(play, () => openPlayer(visit, playable, play)));
  const sorted = [...list].sort((a, b) => (a.participant_role === b.participant_role ? a.started_at.localeCompare(b.started_at) : a.participant_role === 'provider' ? -1 : 1));
  return h('section', { className: 'card visit-recordings', dataset: { visitId: visit }, aria: { labelledby: titleID } },
    h('div', { className: 'section-head' },
      h('h2', { id: titleID }, 'Visit ', h('span', { className: 'mono' }, shortID(visit))),
      play),
    h('p', { className: 'hint' }, `Recorded ${when(first.started_at)}. Visit ID `, h('span', { className: 'mono' }, visit),
      first.patient_id ? h('span', {}, ', patient ID ', h('span', { className: 'mono' }, first.patient_id)) : null, '.'),
    h('ul', { className: 'items compact' }, ...sorted.map((r) => recordingItem(r))));
}

/** @param {Recording} r */
function recordingItem(r) {
  const li = h('li', { className: 'item recording', dataset: { recordingId: r.id, role: r.participant_role, status: r.status, seriesId: r.series_id || r.id, part: String(r.part || 1) } });
  fillItem(li, r);
  return li;
}

/** @param {HTMLElement} li @param {Recording} r */
function fillItem(li, r) {
  const label = roleLabel(r.participant_role);
  const [statusText, statusClass] = STATUS[/** @type {keyof typeof STATUS} */ (r.status)] || [r.status, ''];
  const facts = h('dl', { className: 'facts' },
    h('dt', {}, 'Started'), h('dd', {}, when(r.started_at)),
    h('dt', {}, 'Ended'), h('dd', {}, r.ended_at ? when(r.ended_at) : '—'),
    h('dt', {}, 'Size'), h('dd', {}, size(r.size)),
    h('dt', {}, 'Kept until'), h('dd', {}, r.deleted_at ? `deleted ${when(r.deleted_at)}` : r.legal_hold ? 'held (legal hold)' : when(r.delete_after)),
    h('dt', {}, 'Recording ID'), h('dd', { className: 'mono' }, r.id));
  const details = h('div', { className: 'parts', id: `parts-${r.id}`, hidden: true });
  const toggle = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', dataset: { action: 'parts' }, aria: { expanded: 'false', controls: details.id } },
    'Parts and downloads', h('span', { className: 'sr-only' }, ` (${label})`)));
  toggle.addEventListener('click', () => busy(toggle, async () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    if (open) {
      try {
        fillParts(details, await view(r.id), label);
      } catch (err) {
        problem(err);
        return;
      }
    }
    details.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
  }));
  const actions = h('div', { className: 'actions' });
  if (r.status !== 'deleted') actions.append(toggle);
  if (isAdmin && r.status !== 'deleted') {
    const hold = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', dataset: { action: 'hold' }, aria: { pressed: String(r.legal_hold) } },
      'Legal hold', h('span', { className: 'sr-only' }, ` (${label})`)));
    hold.addEventListener('click', () => setHold(li, r, !r.legal_hold, hold));
    actions.append(hold);
  }
  const piece = r.parts > 1
    ? h('span', { className: 'piece' }, `part ${r.part} of ${r.parts}`,
      r.part > 1 ? ` — continues after a ${(r.gap_before_ms / 1000).toFixed(1)} s gap (the recorder was replaced)` : '', ' ')
    : null;
  li.replaceChildren(
    h('p', { className: 'item-title' }, `${label} recording `, piece,
      h('span', { className: 'tag ' + statusClass }, statusText),
      r.legal_hold ? h('span', { className: 'tag tag-warn' }, 'Legal hold') : null),
    facts, actions, details);
  li.dataset.status = r.status;
  li.dataset.hold = String(r.legal_hold);
}

/** The recording's metadata with its chunks (audited; fetched once). @param {string} id */
async function view(id) {
  let v = views.get(id);
  if (!v) {
    v = /** @type {RecordingView} */ (await get('/api/v1/recordings/' + encodeURIComponent(id)));
    views.set(id, v);
  }
  return v;
}

/** @param {HTMLElement} box @param {RecordingView} v @param {string} label */
function fillParts(box, v, label) {
  const chunks = v.chunks || [];
  const total = chunks.reduce((a, c) => a + (c.duration_ms || 0), 0);
  box.replaceChildren(
    h('p', { className: 'hint' }, `${chunks.length} ${chunks.length === 1 ? 'part' : 'parts'}, ${clock(total)} in all. Each part is a WebM file.`),
    h('ul', { className: 'part-list' }, ...chunks.map((c) => {
      const what = `Part ${c.seq + 1}: ${clock(c.duration_ms)}, ${size(c.size)}`;
      if (c.integrity_failed_at) {
        // The server refuses it: its stored ciphertext failed authentication.
        return h('li', { dataset: { seq: String(c.seq), integrity: 'failed' } }, what, ' ', h('span', { className: 'tag tag-danger' }, 'Failed an integrity check'));
      }
      if (!c.media_url) {
        // A part still uploading after its recording stopped is one a
        // recorder left when it stopped: recovery completes it shortly.
        const live = v.status === 'recording' || v.status === 'finalizing';
        const note = c.status === 'lost' ? 'Lost' : c.status === 'uploading' ? (live ? 'Uploading' : 'Being recovered') : 'Not available';
        return h('li', { dataset: { seq: String(c.seq) } }, what, ' ', h('span', { className: c.status === 'lost' ? 'tag tag-danger' : 'tag tag-warn' }, note));
      }
      return h('li', { dataset: { seq: String(c.seq) } }, what, ' ',
        c.truncated ? h('span', { className: 'tag tag-warn', title: 'The recorder stopped during this part; what reached storage was kept.' }, 'Cut short') : null,
        c.truncated ? ' ' : null,
        h('a', { className: 'button', href: c.media_url + '?download=1', download: '' }, 'Download', h('span', { className: 'sr-only' }, ` ${label} part ${c.seq + 1}`)));
    })));
}

/** @param {HTMLElement} li @param {Recording} r @param {boolean} hold @param {HTMLButtonElement} button */
async function setHold(li, r, hold, button) {
  if (!hold) {
    const yes = await confirmAction({
      title: 'Release the legal hold?',
      message: `Without the hold, this recording is deleted when its retention ends (${when(r.delete_after)}).`,
      confirm: 'Release hold',
      danger: true,
    });
    if (!yes) return;
  }
  await busy(button, async () => {
    try {
      /** @type {Recording} */
      const updated = await post(`/api/v1/admin/recordings/${encodeURIComponent(r.id)}/legal-hold`, { hold });
      Object.assign(r, updated);
      views.delete(r.id);
      say(ui.error, '');
      say(ui.status, hold ? 'Legal hold placed: the recording is kept until the hold is released.' : 'Legal hold released.');
    } catch (err) {
      problem(err);
    }
  });
  fillItem(li, r);
  const again = /** @type {HTMLElement|null} */ (li.querySelector('[data-action="hold"]'));
  if (again) again.focus();
}

/** @param {string} visit @param {Recording[]} recs @param {HTMLElement} opener */
async function openPlayer(visit, recs, opener) {
  /** @type {RecordingView[]} */
  let vs;
  try {
    vs = await Promise.all(recs.map((r) => view(r.id)));
  } catch (err) {
    problem(err);
    return;
  }
  closePlayer(false);
  const roles = new Map();
  /** @type {Map<string, import('./player.js').Track>} one track per joined recording: its pieces' chunks in order */
  const bySeries = new Map();
  const ordered = vs.sort((a, b) => (a.participant_role === b.participant_role ? a.started_at.localeCompare(b.started_at) : a.participant_role === 'provider' ? -1 : 1));
  for (const v of ordered) {
    const joined = bySeries.get(v.series_id || v.id);
    if (joined) {
      joined.chunks = joined.chunks.concat(v.chunks || []);
      continue;
    }
    const base = roleLabel(v.participant_role);
    const n = (roles.get(base) || 0) + 1;
    roles.set(base, n);
    bySeries.set(v.series_id || v.id, { id: v.id, label: n > 1 ? `${base} (${n})` : base, chunks: v.chunks || [] });
  }
  const tracks = [...bySeries.values()];
  const missing = vs.filter((v) => !(v.chunks || []).some((c) => c.media_url)).length;
  ui.playerTitle.textContent = `Visit ${shortID(visit)}: playback`;
  ui.playerNote.textContent = (tracks.length > 1 ? 'Both participants play together, each with its own volume.' : 'One participant was recorded.')
    + (missing ? ` ${missing} ${missing === 1 ? 'recording has' : 'recordings have'} nothing playable yet.` : '');
  ui.player.dataset.visitId = visit;
  ui.player.hidden = false;
  player = new SyncPlayer({ videos: ui.playerVideos, play: ui.play, seek: ui.seek, time: ui.time, status: ui.playerStatus }, tracks);
  /** @type {any} */ (window).openvisitPlayer = player; // tests read the player's state
  playerOpener = opener;
  ui.playerTitle.focus();
  ui.player.scrollIntoView({ block: 'start' });
}

/** @param {boolean} refocus */
function closePlayer(refocus) {
  if (player) player.destroy();
  player = null;
  ui.player.hidden = true;
  if (refocus && playerOpener && playerOpener.isConnected) playerOpener.focus();
}

ui.playerClose.addEventListener('click', () => closePlayer(true));
ui.filters.addEventListener('submit', (ev) => {
  ev.preventDefault();
  busy(ui.submit, search);
});
ui.clear.addEventListener('click', () => {
  for (const i of [ui.visit, ui.patient, ui.from, ui.to]) {
    i.value = '';
    fieldError(i, '');
  }
  busy(ui.submit, search);
});

async function main() {
  const s = await startStaffPage(['admin', 'provider']);
  if (!s) return;
  isAdmin = s.view.kind === 'admin';
  ui.brand.href = homeFor(s.view.kind);
  ui.navAdmin.hidden = !isAdmin;
  ui.navProvider.hidden = isAdmin;
  if (isAdmin) patientLookup(ui.patient, () => ui.filters.requestSubmit());

  const p = new URLSearchParams(location.search);
  ui.visit.value = p.get('visit') || '';
  ui.patient.value = p.get('patient') || '';
  const date = /^\d{4}-\d{2}-\d{2}$/;
  ui.from.value = date.test(p.get('from') || '') ? /** @type {string} */ (p.get('from')) : '';
  ui.to.value = date.test(p.get('to') || '') ? /** @type {string} */ (p.get('to')) : '';
  await search();
  document.body.dataset.loaded = 'true';
}

main();
