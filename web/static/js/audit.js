// The audit trail page: search the hash-chained audit log with filters,
// page back through older entries, export what matches (CSV or JSON, with
// the signed checkpoint), and the per-patient access report ("who accessed
// this patient's data, and when").

import { describe, get } from './api.js';
import { busy, byId, h, say, shortID, when } from './dom.js';
import { Pager, loadStaff, query, rfc3339 } from './compliance.js';
import { patientLookup } from './patient-lookup.js';
import { problem, startStaffPage } from './staff.js';

/**
 * @typedef {object} Entry
 * @property {number} seq
 * @property {string} at
 * @property {string} actor_id
 * @property {string} actor_role
 * @property {string} action
 * @property {string} resource_type
 * @property {string} resource_id
 * @property {string} patient_id
 * @property {string} visit_id
 * @property {string} ip
 * @property {string} user_agent
 * @property {'success'|'failure'|'denied'} outcome
 * @property {string} reason
 * @property {string} prev_hash
 * @property {string} hash
 *
 * @typedef {object} Report
 * @property {string} patient_id
 * @property {Entry[]} entries
 * @property {Record<string, string>} actors  user ID → email
 */

/** Entries per search page. */
const PAGE = 50;
/** The server's cap on one access report answer. */
const REPORT_LIMIT = 1000;

const ui = {
  status: byId('status'),
  error: byId('error'),
  staffList: /** @type {HTMLDataListElement} */ (byId('staff-list')),
  search: /** @type {HTMLFormElement} */ (byId('search')),
  searchSubmit: /** @type {HTMLButtonElement} */ (byId('search-submit')),
  action: /** @type {HTMLInputElement} */ (byId('f-action')),
  outcome: /** @type {HTMLSelectElement} */ (byId('f-outcome')),
  actor: /** @type {HTMLInputElement} */ (byId('f-actor')),
  patient: /** @type {HTMLInputElement} */ (byId('f-patient')),
  visit: /** @type {HTMLInputElement} */ (byId('f-visit')),
  from: /** @type {HTMLInputElement} */ (byId('f-from')),
  to: /** @type {HTMLInputElement} */ (byId('f-to')),
  exportCSV: /** @type {HTMLAnchorElement} */ (byId('export-csv')),
  exportJSON: /** @type {HTMLAnchorElement} */ (byId('export-json')),
  resultsStatus: byId('results-status'),
  resultsRegion: byId('results-region'),
  resultsBody: byId('results-body'),
  more: /** @type {HTMLButtonElement} */ (byId('more')),
  reportTitle: byId('report-title'),
  report: /** @type {HTMLFormElement} */ (byId('report')),
  reportSubmit: /** @type {HTMLButtonElement} */ (byId('report-submit')),
  reportPatient: /** @type {HTMLInputElement} */ (byId('r-patient')),
  reportStatus: byId('report-status'),
  reportResult: byId('report-result'),
  reportActors: byId('report-actors'),
  reportBody: byId('report-body'),
  reportPager: byId('report-pager'),
};

/** @type {Map<string, import('./compliance.js').StaffMember>} */
let staff = new Map();

/** The filters of the search on screen, for "Load older". @type {Record<string, string>} */
let shown = {};
/** The oldest sequence number on screen. */
let oldestSeq = 0;

function clearMessages() {
  say(ui.error, '');
  say(ui.status, '');
}

/** The search filters in the form, as API query parameters. */
function filters() {
  return {
    action: ui.action.value.trim(),
    outcome: ui.outcome.value,
    actor: ui.actor.value.trim(),
    patient: ui.patient.value.trim(),
    visit: ui.visit.value.trim(),
    from: rfc3339(ui.from.value),
    to: rfc3339(ui.to.value),
  };
}

/** Points the export links at the form's current filters. */
function updateExports() {
  const f = filters();
  ui.exportCSV.href = '/api/v1/admin/audit/export' + query({ format: 'csv', ...f });
  ui.exportJSON.href = '/api/v1/admin/audit/export' + query({ format: 'json', ...f });
}

/** An actor's display name: the staff member's email when known. @param {string} id @param {Record<string, string>} [emails] */
function actorName(id, emails) {
  if (!id) return '—';
  const u = staff.get(id);
  if (u) return u.email;
  if (emails && emails[id]) return emails[id];
  return id.length > 12 ? shortID(id) + '…' : id;
}

/** @param {Entry['outcome']} o */
function outcomeTag(o) {
  const cls = o === 'success' ? 'tag-ok' : o === 'denied' ? 'tag-danger' : 'tag-warn';
  return h('span', { className: 'tag ' + cls }, o);
}

/** A link that opens the patient's access report on this page. @param {string} id */
function patientLink(id) {
  if (!id) return '—';
  const a = h('a', { href: '/audit' + query({ report: id }) + '#report-section', className: 'mono', title: id, dataset: { patientId: id } },
    shortID(id), h('span', { className: 'sr-only' }, ` (access report for patient ${id})`));
  a.addEventListener('click', (ev) => {
    if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return; // let a new tab open
    ev.preventDefault();
    openReport(id, true);
  });
  return a;
}

/** An ID shown short, the whole in its title and for screen readers. @param {string} id */
function idCell(id) {
  if (!id) return '—';
  return h('span', { className: 'mono', title: id }, shortID(id), h('span', { className: 'sr-only' }, ` (${id})`));
}

/** The rest of an entry, folded. @param {Entry} e */
function details(e) {
  /** @type {[string, string][]} */
  const rows = [
    ['Sequence', String(e.seq)],
    ['Time (UTC)', e.at],
    ['Actor ID', e.actor_id],
    ['Role', e.actor_role],
    ['Resource', [e.resource_type, e.resource_id].filter(Boolean).join(' ')],
    ['Patient ID', e.patient_id],
    ['Visit ID', e.visit_id],
    ['IP address', e.ip],
    ['Browser', e.user_agent],
    ['Reason', e.reason],
    ['Previous hash', e.prev_hash],
    ['Hash', e.hash],
  ];
  return h('details', { className: 'entry-details' },
    h('summary', {}, 'More', h('span', { className: 'sr-only' }, ` about entry ${e.seq}`)),
    h('dl', { className: 'facts' }, ...rows.filter(([, v]) => v).flatMap(([k, v]) => [h('dt', {}, k), h('dd', { className: 'mono' }, v)])));
}

/** @param {Entry} e @param {Record<string, string>} [emails] */
function actorCell(e, emails) {
  return [h('span', { className: 'who-cell' }, actorName(e.actor_id, emails)), e.actor_role ? h('span', { className: 'hint' }, ` ${e.actor_role}`) : ''];
}

/** @param {Entry} e */
function searchRow(e) {
  return h('tr', { role: 'row', tabIndex: -1, dataset: { seq: String(e.seq), action: e.action } },
    h('td', { role: 'cell', dataset: { label: 'Time' } }, h('time', { dateTime: e.at }, when(e.at))),
    h('td', { role: 'cell', dataset: { label: 'Actor' } }, ...actorCell(e)),
    h('td', { role: 'cell', dataset: { label: 'Action' } }, h('code', {}, e.action)),
    h('td', { role: 'cell', dataset: { label: 'Outcome' } }, outcomeTag(e.outcome)),
    h('td', { role: 'cell', dataset: { label: 'Patient' } }, patientLink(e.patient_id)),
    h('td', { role: 'cell', dataset: { label: 'Visit' } }, idCell(e.visit_id)),
    h('td', { role: 'cell', dataset: { label: 'Details' } }, e.reason ? h('p', { className: 'entry-reason' }, e.reason) : '', details(e)));
}

/**
 * Runs the search in the form (older = false) or the next older page of
 * the one on screen.
 * @param {boolean} older
 */
async function search(older) {
  const f = older ? shown : filters();
  /** @type {{entries: Entry[]}} */
  const r = await get('/api/v1/admin/audit' + query({ ...f, limit: PAGE, before_seq: older ? oldestSeq : undefined }));
  const entries = r.entries || [];
  const rows = entries.map(searchRow);
  if (older) {
    ui.resultsBody.append(...rows);
  } else {
    shown = f;
    ui.resultsBody.replaceChildren(...rows);
  }
  if (entries.length) oldestSeq = entries[entries.length - 1].seq;
  const total = ui.resultsBody.children.length;
  const end = entries.length < PAGE;
  ui.more.hidden = end;
  ui.resultsRegion.hidden = total === 0;
  ui.resultsStatus.textContent = total === 0
    ? 'No entries match these filters.'
    : `${total} ${total === 1 ? 'entry' : 'entries'} shown, newest first${end ? '; there are no older ones.' : '.'}`;
  if (older && rows.length) rows[0].focus(); // where the new entries start
  else if (older) ui.resultsStatus.focus();
}

ui.search.addEventListener('submit', (ev) => {
  ev.preventDefault();
  clearMessages();
  busy(ui.searchSubmit, () => search(false).catch(problem));
});
ui.search.addEventListener('input', updateExports);
ui.search.addEventListener('change', updateExports);
ui.search.addEventListener('reset', () => setTimeout(updateExports)); // the values clear after the event
ui.more.addEventListener('click', () => busy(ui.more, () => search(true).catch(problem)));

/** The report's rows, for paging. @type {Entry[]} */
let reportEntries = [];
/** @type {Record<string, string>} */
let reportEmails = {};

/** @param {Entry} e */
function reportRow(e) {
  return h('tr', { role: 'row', dataset: { seq: String(e.seq), action: e.action } },
    h('td', { role: 'cell', dataset: { label: 'Time' } }, h('time', { dateTime: e.at }, when(e.at))),
    h('td', { role: 'cell', dataset: { label: 'Who' } }, ...actorCell(e, reportEmails)),
    h('td', { role: 'cell', dataset: { label: 'Action' } }, h('code', {}, e.action)),
    h('td', { role: 'cell', dataset: { label: 'Outcome' } }, outcomeTag(e.outcome)),
    h('td', { role: 'cell', dataset: { label: 'Visit' } }, idCell(e.visit_id)),
    h('td', { role: 'cell', dataset: { label: 'Details' } }, e.reason ? h('p', { className: 'entry-reason' }, e.reason) : '', details(e)));
}

const reportPager = new Pager({ body: ui.reportBody, nav: ui.reportPager, render: reportRow, noun: 'entries' });

/** One line per actor: who, how many times, first and last. */
function renderActors() {
  /** @type {Map<string, {n: number, first: string, last: string, role: string}>} */
  const by = new Map();
  for (const e of reportEntries) {
    const a = by.get(e.actor_id) || { n: 0, first: e.at, last: e.at, role: e.actor_role };
    a.n++;
    if (e.at < a.first) a.first = e.at;
    if (e.at > a.last) a.last = e.at;
    by.set(e.actor_id, a);
  }
  ui.reportActors.replaceChildren(...[...by].sort((x, y) => y[1].last.localeCompare(x[1].last)).map(([id, a]) =>
    h('li', { className: 'item', dataset: { actorId: id } },
      h('p', { className: 'item-title' }, actorName(id, reportEmails), a.role ? h('span', { className: 'hint' }, ` ${a.role}`) : ''),
      h('p', { className: 'hint' }, `${a.n} ${a.n === 1 ? 'entry' : 'entries'}; `,
        a.n === 1 ? when(a.first) : `from ${when(a.first)} to ${when(a.last)}`))));
}

/**
 * Loads a patient's access report (older: the next page before the oldest
 * entry already loaded).
 * @param {string} patient
 * @param {boolean} [older]
 */
async function loadReport(patient, older) {
  const before = older && reportEntries.length ? reportEntries[reportEntries.length - 1].seq : undefined;
  /** @type {Report} */
  const r = await get(`/api/v1/admin/patients/${encodeURIComponent(patient)}/access-report` + query({ before_seq: before }));
  const entries = r.entries || [];
  reportEntries = older ? reportEntries.concat(entries) : entries;
  reportEmails = { ...(older ? reportEmails : {}), ...(r.actors || {}) };
  renderActors();
  reportPager.set(reportEntries);
  ui.reportResult.hidden = reportEntries.length === 0;
  const n = reportEntries.length;
  const people = ui.reportActors.children.length;
  let text = n === 0
    ? `No one has accessed the data of patient ${patient}.`
    : `Patient ${patient}: ${n} ${n === 1 ? 'entry' : 'entries'} by ${people} ${people === 1 ? 'actor' : 'actors'}.`;
  if (entries.length >= REPORT_LIMIT) text += ` Only the newest ${n} are shown.`;
  ui.reportStatus.textContent = text;
  reportMore.hidden = entries.length < REPORT_LIMIT;
}

const reportMore = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', id: 'report-more', hidden: true }, 'Load older entries'));
ui.reportPager.after(h('div', { className: 'actions' }, reportMore));
reportMore.addEventListener('click', () => busy(reportMore, () => loadReport(ui.reportPatient.value.trim(), true).catch(problem)));

/**
 * Shows a patient's access report, from the form or a search result.
 * @param {string} patient
 * @param {boolean} [push]  record it in the history (from a link)
 */
async function openReport(patient, push) {
  clearMessages();
  ui.reportPatient.value = patient;
  if (push) history.pushState({ report: patient }, '', '/audit' + query({ report: patient }) + '#report-section');
  ui.reportStatus.textContent = 'Loading the access report…';
  try {
    await loadReport(patient);
  } catch (err) {
    ui.reportStatus.textContent = '';
    ui.reportResult.hidden = true;
    /** @type {any} */ const e = err;
    say(ui.error, e && e.status === 404 ? `There is no patient with the ID ${patient}.` : describe(err));
  }
  ui.reportTitle.focus();
  ui.reportTitle.scrollIntoView({ block: 'start' });
}

ui.report.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = ui.reportPatient.value.trim();
  if (!id) return;
  busy(ui.reportSubmit, () => openReport(id, true));
});

window.addEventListener('popstate', () => {
  const id = new URLSearchParams(location.search).get('report');
  if (id) openReport(id, false);
});

async function main() {
  const s = await startStaffPage('admin');
  if (!s) return;
  patientLookup(ui.reportPatient, () => ui.report.requestSubmit());
  updateExports();
  try {
    staff = await loadStaff(ui.staffList);
    await search(false); // the latest activity
    const id = new URLSearchParams(location.search).get('report');
    if (id) await openReport(id, false);
  } catch (err) {
    problem(err);
  }
  document.body.dataset.loaded = 'true';
}

main();
