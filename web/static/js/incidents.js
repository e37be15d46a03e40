// The incidents page: recorded security incidents with their 60-day
// notification deadline, a form to record one, and the breach scope query
// (which patients an actor or a key touched in a window, counted by state,
// with the notices each count calls for, and the notification list as CSV).

import { get, post } from './api.js';
import { busy, byId, h, say, when } from './dom.js';
import { Pager, loadStaff, localValue, query, rfc3339 } from './compliance.js';
import { done, problem, startStaffPage } from './staff.js';

/**
 * @typedef {object} Incident
 * @property {string} id
 * @property {string} title
 * @property {string} description
 * @property {string} discovered_at
 * @property {string} notify_by
 * @property {string} status
 * @property {string} created_at
 *
 * @typedef {object} Patient
 * @property {string} id
 * @property {string} name
 * @property {string} date_of_birth
 * @property {string} email
 * @property {string} phone
 * @property {string} state
 *
 * @typedef {object} Scope
 * @property {Patient[]} patients
 * @property {string[]} recording_ids
 * @property {number} total
 * @property {Record<string, number>} by_state
 * @property {string[]|null} media_notice_states
 * @property {boolean} hhs_immediate
 * @property {number} unknown_state
 */

const DAY = 24 * 60 * 60 * 1000;
/** Fewer days left than this and the deadline is highlighted. */
const SOON_DAYS = 10;
/** A breach of more than this many residents of a state calls for media notice. */
const MEDIA_THRESHOLD = 500;

const ui = {
  status: byId('status'),
  error: byId('error'),
  staffList: /** @type {HTMLDataListElement} */ (byId('staff-list')),
  listRefresh: /** @type {HTMLButtonElement} */ (byId('list-refresh')),
  listEmpty: byId('list-empty'),
  incidents: byId('incidents'),
  create: /** @type {HTMLFormElement} */ (byId('create')),
  createSubmit: /** @type {HTMLButtonElement} */ (byId('create-submit')),
  title: /** @type {HTMLInputElement} */ (byId('c-title')),
  description: /** @type {HTMLTextAreaElement} */ (byId('c-description')),
  discovered: /** @type {HTMLInputElement} */ (byId('c-discovered')),
  scopeTitle: byId('scope-title'),
  scope: /** @type {HTMLFormElement} */ (byId('scope')),
  scopeSubmit: /** @type {HTMLButtonElement} */ (byId('scope-submit')),
  incident: /** @type {HTMLSelectElement} */ (byId('s-incident')),
  byActor: /** @type {HTMLInputElement} */ (byId('s-by-actor')),
  byKey: /** @type {HTMLInputElement} */ (byId('s-by-key')),
  actorField: byId('s-actor-field'),
  actor: /** @type {HTMLInputElement} */ (byId('s-actor')),
  kekField: byId('s-kek-field'),
  kek: /** @type {HTMLInputElement} */ (byId('s-kek')),
  from: /** @type {HTMLInputElement} */ (byId('s-from')),
  to: /** @type {HTMLInputElement} */ (byId('s-to')),
  scopeStatus: byId('scope-status'),
  scopeResult: byId('scope-result'),
  hhs: byId('hhs'),
  csv: /** @type {HTMLAnchorElement} */ (byId('scope-csv')),
  byStateBody: byId('by-state-body'),
  byStateTotal: byId('by-state-total'),
  patientsBody: byId('patients-body'),
  patientsPager: byId('patients-pager'),
  recordings: /** @type {HTMLDetailsElement} */ (byId('recordings')),
  recordingsSummary: byId('recordings-summary'),
  recordingsList: byId('recordings-list'),
};

/** @type {Incident[]} */
let incidents = [];

/**
 * Whole days from `now` to the deadline, rounded up (a deadline later
 * today is "1 day left"); negative when it has passed.
 * @param {string} deadline
 * @param {number} now  ms, the server's clock
 */
function daysLeft(deadline, now) {
  return Math.ceil((Date.parse(deadline) - now) / DAY);
}

/** @param {number} n */
function days(n) {
  return `${n} ${n === 1 ? 'day' : 'days'}`;
}

/** @param {Incident} inc @param {number} now */
function deadline(inc, now) {
  const left = daysLeft(inc.notify_by, now);
  const open = inc.status === 'open';
  const soon = open && left < SOON_DAYS;
  let text = `Notify by ${when(inc.notify_by)}`;
  if (open) text += left >= 0 ? ` · ${days(left)} left` : ` · overdue by ${days(-left)}`;
  return h('p', { className: 'deadline' + (soon ? ' deadline-soon' : '') },
    soon ? h('span', { className: 'tag tag-danger' }, left >= 0 ? 'Due soon' : 'Overdue') : '',
    soon ? ' ' : '', text);
}

/** @param {number} now */
function renderIncidents(now) {
  ui.listEmpty.hidden = incidents.length > 0;
  ui.incidents.replaceChildren(...incidents.map((inc) => {
    const scope = /** @type {HTMLButtonElement} */ (h('button', { type: 'button' }, 'Find who is affected', h('span', { className: 'sr-only' }, ` (${inc.title})`)));
    scope.addEventListener('click', () => {
      ui.incident.value = inc.id;
      ui.scopeTitle.scrollIntoView({ block: 'start' });
      (ui.byKey.checked ? ui.kek : ui.actor).focus();
    });
    return h('li', { className: 'item' + (inc.status === 'open' ? '' : ' done'), dataset: { incidentId: inc.id } },
      h('p', { className: 'item-title' }, h('span', { className: 'tag' + (inc.status === 'open' ? ' tag-warn' : '') }, inc.status), ' ', inc.title),
      inc.description ? h('blockquote', { className: 'reason' }, inc.description) : '',
      deadline(inc, now),
      h('p', { className: 'hint' }, `Discovered ${when(inc.discovered_at)} · recorded ${when(inc.created_at)}`),
      h('div', { className: 'actions' }, scope));
  }));
  const selected = ui.incident.value;
  ui.incident.replaceChildren(...incidents.map((inc) => h('option', { value: inc.id }, `${inc.title} (notify by ${when(inc.notify_by)})`)));
  if (incidents.some((i) => i.id === selected)) ui.incident.value = selected;
  ui.scopeSubmit.disabled = incidents.length === 0;
}

async function loadIncidents() {
  /** @type {{incidents: Incident[], now: string}} */
  const r = await get('/api/v1/admin/incidents');
  incidents = r.incidents || [];
  const now = Date.parse(r.now);
  renderIncidents(Number.isNaN(now) ? Date.now() : now);
}

ui.listRefresh.addEventListener('click', () => busy(ui.listRefresh, () => loadIncidents().catch(problem)));

ui.create.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const discovered = rfc3339(ui.discovered.value);
  if (!discovered) {
    ui.discovered.setAttribute('aria-invalid', 'true');
    say(ui.error, 'Enter when the incident was discovered.');
    ui.discovered.focus();
    return;
  }
  ui.discovered.removeAttribute('aria-invalid');
  busy(ui.createSubmit, async () => {
    try {
      /** @type {Incident} */
      const inc = await post('/api/v1/admin/incidents', {
        title: ui.title.value.trim(),
        description: ui.description.value.trim(),
        discovered_at: discovered,
      });
      ui.create.reset();
      ui.discovered.value = localValue(new Date());
      await loadIncidents();
      ui.incident.value = inc.id;
      done(`Incident recorded. Notify affected individuals by ${when(inc.notify_by)}.`);
    } catch (err) {
      problem(err);
      ui.title.focus();
    }
  });
});

function syncBy() {
  const key = ui.byKey.checked;
  ui.kekField.hidden = !key;
  ui.actorField.hidden = key;
  ui.kek.required = key;
  ui.actor.required = !key;
}
ui.byActor.addEventListener('change', syncBy);
ui.byKey.addEventListener('change', syncBy);

/** @param {Patient} p */
function patientRow(p) {
  return h('tr', { role: 'row', dataset: { patientId: p.id } },
    h('td', { role: 'cell', dataset: { label: 'Name' } }, p.name || '—'),
    h('td', { role: 'cell', dataset: { label: 'Date of birth' } }, p.date_of_birth || '—'),
    h('td', { role: 'cell', dataset: { label: 'State' } }, p.state || 'Unknown'),
    h('td', { role: 'cell', className: 'email', dataset: { label: 'Email' } }, p.email || '—'),
    h('td', { role: 'cell', dataset: { label: 'Phone' } }, p.phone || '—'),
    h('td', { role: 'cell', dataset: { label: 'Access report' } },
      h('a', { href: '/audit' + query({ report: p.id }) + '#report-section' }, 'Who accessed', h('span', { className: 'sr-only' }, ` ${p.name || p.id}'s data`))));
}

const patients = new Pager({ body: ui.patientsBody, nav: ui.patientsPager, render: patientRow, noun: 'patients' });

/** @param {Scope} sc */
function renderScope(sc) {
  const media = new Set(sc.media_notice_states || []);
  const states = Object.entries(sc.by_state || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const rows = states.map(([st, n]) => {
    const flagged = media.has(st) || n > MEDIA_THRESHOLD;
    return h('tr', { className: flagged ? 'flagged' : '', dataset: { state: st, count: String(n) } },
      h('th', { scope: 'row' }, st),
      h('td', { className: 'num' }, String(n)),
      flagged
        ? h('td', {}, h('span', { className: 'tag tag-danger' }, 'Media notice'), h('span', { className: 'tag tag-danger' }, 'HHS notice now'),
          h('span', { className: 'sr-only' }, ` (more than ${MEDIA_THRESHOLD} residents affected)`))
        : h('td', {}, h('span', { className: 'hint' }, 'Individuals')));
  });
  if (sc.unknown_state) {
    rows.push(h('tr', { dataset: { state: '', count: String(sc.unknown_state) } },
      h('th', { scope: 'row' }, 'Unknown (no state on file)'),
      h('td', { className: 'num' }, String(sc.unknown_state)),
      h('td', {}, h('span', { className: 'hint' }, 'Individuals; find their state'))));
  }
  ui.byStateBody.replaceChildren(...rows);
  ui.byStateTotal.textContent = String(sc.total);

  const flags = [...media].sort();
  ui.hhs.className = 'card' + (sc.hhs_immediate ? ' highlight warn' : '');
  ui.hhs.replaceChildren(
    h('p', { className: 'item-title', id: 'hhs-title' }, sc.hhs_immediate
      ? `${sc.total} individuals affected: notify HHS now, at the same time as the individuals (500 or more).`
      : `${sc.total} ${sc.total === 1 ? 'individual' : 'individuals'} affected: fewer than 500, so HHS is told in the yearly breach log.`),
    flags.length
      ? h('p', {}, `More than ${MEDIA_THRESHOLD} residents of ${flags.join(', ')}: notify prominent media there too.`)
      : h('p', { className: 'hint' }, `No state has more than ${MEDIA_THRESHOLD} affected residents: no media notice is needed.`));

  const byStateName = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  patients.set((sc.patients || []).slice().sort((a, b) => byStateName.compare(a.state || '~', b.state || '~') || byStateName.compare(a.name, b.name)));
  const recs = sc.recording_ids || [];
  ui.recordings.hidden = recs.length === 0;
  ui.recordingsSummary.textContent = `${recs.length} ${recs.length === 1 ? 'recording' : 'recordings'} in scope`;
  ui.recordingsList.replaceChildren(...recs.map((id) => h('li', {}, id)));
}

ui.scope.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = ui.incident.value;
  const from = rfc3339(ui.from.value);
  const to = rfc3339(ui.to.value);
  if (!id || !from || !to) {
    say(ui.error, 'Choose an incident and a time window.');
    return;
  }
  const params = {
    actor_id: ui.byKey.checked ? undefined : ui.actor.value.trim(),
    kek_id: ui.byKey.checked ? ui.kek.value.trim() : undefined,
    from,
    to,
  };
  const path = `/api/v1/admin/incidents/${encodeURIComponent(id)}/scope`;
  say(ui.error, '');
  say(ui.status, '');
  busy(ui.scopeSubmit, async () => {
    ui.scopeStatus.textContent = 'Searching…';
    try {
      /** @type {{incident: Incident, scope: Scope}} */
      const r = await get(path + query(params));
      renderScope(r.scope);
      ui.csv.href = path + query({ ...params, format: 'csv' });
      ui.scopeResult.hidden = false;
      const n = r.scope.total;
      ui.scopeStatus.textContent = `${n} ${n === 1 ? 'patient' : 'patients'} affected by “${r.incident.title}”`
        + `${(r.scope.recording_ids || []).length ? `, ${(r.scope.recording_ids || []).length} recordings` : ''}.`;
    } catch (err) {
      ui.scopeResult.hidden = true;
      ui.scopeStatus.textContent = '';
      problem(err);
    }
  });
});

async function main() {
  const s = await startStaffPage('admin');
  if (!s) return;
  const now = new Date();
  ui.discovered.value = localValue(now);
  ui.to.value = localValue(now, true);
  syncBy();
  try {
    await Promise.all([loadIncidents(), loadStaff(ui.staffList)]);
  } catch (err) {
    problem(err);
  }
  document.body.dataset.loaded = 'true';
}

main();
