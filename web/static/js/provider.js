// The provider's page: their visits, "Start a visit now", and the
// emergency access (break-glass) form.

import { describe, get, post } from './api.js';
import { busy, byId, confirmAction, h, say, shortID, when } from './dom.js';
import { startStaffPage } from './staff.js';

/**
 * @typedef {object} Visit
 * @property {string} id
 * @property {string} status
 * @property {string} created_at
 * @property {string} [scheduled_start]
 * @property {string} [scheduled_end]
 */

const ui = {
  status: byId('status'),
  error: byId('error'),
  start: /** @type {HTMLButtonElement} */ (byId('start-visit')),
  refresh: /** @type {HTMLButtonElement} */ (byId('visits-refresh')),
  loading: byId('visits-loading'),
  empty: byId('visits-empty'),
  visits: byId('visits'),
  bgForm: byId('bg-form'),
  bgVisit: /** @type {HTMLInputElement} */ (byId('bg-visit')),
  bgReason: /** @type {HTMLTextAreaElement} */ (byId('bg-reason')),
  bgCount: byId('bg-count'),
  bgSubmit: /** @type {HTMLButtonElement} */ (byId('bg-submit')),
  bgResult: byId('bg-result'),
  bgResultText: byId('bg-result-text'),
  bgJoin: /** @type {HTMLButtonElement} */ (byId('bg-join')),
};

const STATUS = /** @type {Record<string, string>} */ ({
  scheduled: 'Scheduled',
  waiting: 'Patient waiting',
  in_progress: 'In progress',
  completed: 'Completed',
  cancelled: 'Cancelled',
  no_show: 'No show',
});
const CLOSED = new Set(['completed', 'cancelled', 'no_show']);

/** @param {unknown} err */
function problem(err) {
  say(ui.status, '');
  say(ui.error, describe(err));
}

/** Opens the call page for a visit (a visit ID in the URL is an opaque ID). @param {string} id */
function join(id) {
  location.assign('/call?visit=' + encodeURIComponent(id));
}

/** @param {Visit[]} visits */
function render(visits) {
  ui.loading.hidden = true;
  ui.empty.hidden = visits.length > 0;
  ui.visits.replaceChildren(...visits.map((v) => {
    const started = v.scheduled_start ? `Scheduled ${when(v.scheduled_start)}` : `Created ${when(v.created_at)}`;
    const item = h('li', { className: 'item visit', dataset: { visitId: v.id } },
      h('div', {},
        h('p', { className: 'item-title' }, `Visit ${shortID(v.id)}`, ' ',
          h('span', { className: 'tag' + (v.status === 'waiting' ? ' tag-warn' : '') }, STATUS[v.status] || v.status)),
        h('p', { className: 'hint' }, started),
        h('p', { className: 'hint mono' }, `ID ${v.id}`)));
    if (!CLOSED.has(v.status)) {
      const b = h('button', { type: 'button', className: 'primary', dataset: { action: 'join' } },
        'Join', h('span', { className: 'sr-only' }, ` visit ${shortID(v.id)}`));
      b.addEventListener('click', () => join(v.id));
      item.append(h('div', { className: 'actions' }, b));
    }
    return item;
  }));
}

async function load() {
  /** @type {{visits: Visit[]}} */
  const r = await get('/api/v1/visits');
  render(r.visits || []);
}

ui.start.addEventListener('click', () => busy(ui.start, async () => {
  try {
    /** @type {Visit} */
    const v = await post('/api/v1/visits', {});
    say(ui.status, 'Visit created; opening the call…');
    join(v.id);
  } catch (err) {
    problem(err);
  }
}));

ui.refresh.addEventListener('click', () => busy(ui.refresh, () => load().catch(problem)));

function count() {
  const n = ui.bgReason.value.trim().length;
  ui.bgCount.textContent = n < 20 ? `${n} of at least 20 characters` : `${n} of at most 2000 characters`;
}
ui.bgReason.addEventListener('input', count);

ui.bgForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const visit = ui.bgVisit.value.trim().toLowerCase();
  const reason = ui.bgReason.value.trim();
  if (reason.length < 20) {
    say(ui.error, 'Write why you need emergency access (at least 20 characters).');
    ui.bgReason.focus();
    return;
  }
  const yes = await confirmAction({
    title: 'Request emergency access?',
    message: `You will get access to visit ${shortID(visit)} for a limited time. This is recorded and an admin will review your reason.`,
    confirm: 'Request access',
    danger: true,
  });
  if (!yes) return;
  await busy(ui.bgSubmit, async () => {
    try {
      /** @type {{grant_id: string, visit_id: string, expires_at: string}} */
      const g = await post(`/api/v1/visits/${encodeURIComponent(visit)}/break-glass`, { reason });
      say(ui.error, '');
      ui.bgReason.value = '';
      count();
      ui.bgResultText.textContent = `Emergency access to visit ${shortID(g.visit_id)} granted until ${when(g.expires_at)}.`;
      ui.bgJoin.dataset.visit = g.visit_id;
      ui.bgResult.hidden = false;
      ui.bgResult.focus();
    } catch (err) {
      problem(err);
    }
  });
});

ui.bgJoin.addEventListener('click', () => {
  if (ui.bgJoin.dataset.visit) join(ui.bgJoin.dataset.visit);
});

async function main() {
  const s = await startStaffPage('provider');
  if (!s) return;
  try {
    await load();
  } catch (err) {
    problem(err);
  }
  document.body.dataset.loaded = 'true';
}

main();
