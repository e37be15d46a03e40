// The provider's page: their schedule (patients, scheduling, a day or week
// of visits with reschedule / cancel / no-show and the patient's invite
// link), "Start a visit now", and the emergency access (break-glass) form.

import { APIError, describe, get, post } from './api.js';
import { busy, byId, confirmAction, copy, h, say, shortID, when } from './dom.js';
import { done, problem, startStaffPage } from './staff.js';
import { openCareTeam } from './provider-careteam.js';

/**
 * @typedef {object} Visit
 * @property {string} id
 * @property {string} status
 * @property {string} created_at
 * @property {string} [scheduled_start]
 * @property {string} [scheduled_end]
 * @property {string} [patient_id]
 * @property {string} [patient_name]
 * @property {string} [reason]
 *
 * @typedef {object} Patient
 * @property {string} id
 * @property {string} name
 * @property {string} date_of_birth
 *
 * @typedef {object} Invite
 * @property {string} invite_url
 * @property {string} [lang] the invite's language (a catalogue code)
 * @property {string} usable_from
 * @property {string} usable_until
 * @property {string} ics
 * @property {boolean} emailed
 */

const ui = {
  status: byId('status'),
  error: byId('error'),
  // patient
  chosen: byId('patient-chosen'),
  chosenText: byId('patient-chosen-text'),
  change: /** @type {HTMLButtonElement} */ (byId('patient-change')),
  pick: byId('patient-pick'),
  search: /** @type {HTMLFormElement} */ (byId('patient-search')),
  q: /** @type {HTMLInputElement} */ (byId('patient-q')),
  find: /** @type {HTMLButtonElement} */ (byId('patient-find')),
  resultsStatus: byId('patient-results-status'),
  results: byId('patient-results'),
  newPatient: /** @type {HTMLButtonElement} */ (byId('patient-new')),
  patientForm: /** @type {HTMLFormElement} */ (byId('patient-form')),
  pName: /** @type {HTMLInputElement} */ (byId('p-name')),
  pDob: /** @type {HTMLInputElement} */ (byId('p-dob')),
  pEmail: /** @type {HTMLInputElement} */ (byId('p-email')),
  pPhone: /** @type {HTMLInputElement} */ (byId('p-phone')),
  pState: /** @type {HTMLInputElement} */ (byId('p-state')),
  pSubmit: /** @type {HTMLButtonElement} */ (byId('p-submit')),
  // visit
  visitForm: /** @type {HTMLFormElement} */ (byId('visit-form')),
  start: /** @type {HTMLInputElement} */ (byId('visit-start')),
  duration: /** @type {HTMLSelectElement} */ (byId('visit-duration')),
  reason: /** @type {HTMLInputElement} */ (byId('visit-reason')),
  schedule: /** @type {HTMLButtonElement} */ (byId('schedule-submit')),
  // invite
  invite: byId('invite-panel'),
  inviteText: byId('invite-text'),
  inviteLink: /** @type {HTMLInputElement} */ (byId('invite-link')),
  inviteLang: /** @type {HTMLSelectElement} */ (byId('invite-lang')),
  inviteCopy: /** @type {HTMLButtonElement} */ (byId('invite-copy')),
  inviteIcs: /** @type {HTMLButtonElement} */ (byId('invite-ics')),
  inviteEmail: /** @type {HTMLButtonElement} */ (byId('invite-email')),
  inviteRevoke: /** @type {HTMLButtonElement} */ (byId('invite-revoke')),
  inviteClose: /** @type {HTMLButtonElement} */ (byId('invite-close')),
  inviteStatus: byId('invite-status'),
  // schedule list
  refresh: /** @type {HTMLButtonElement} */ (byId('visits-refresh')),
  viewDay: /** @type {HTMLButtonElement} */ (byId('view-day')),
  viewWeek: /** @type {HTMLButtonElement} */ (byId('view-week')),
  prev: /** @type {HTMLButtonElement} */ (byId('range-prev')),
  today: /** @type {HTMLButtonElement} */ (byId('range-today')),
  next: /** @type {HTMLButtonElement} */ (byId('range-next')),
  rangeLabel: byId('range-label'),
  loading: byId('visits-loading'),
  empty: byId('visits-empty'),
  visits: byId('visits'),
  startNow: /** @type {HTMLButtonElement} */ (byId('start-visit')),
  // break-glass
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

/** Opens the call page for a visit (a visit ID in the URL is an opaque ID). @param {string} id */
function join(id) {
  location.assign('/call?visit=' + encodeURIComponent(id));
}

// ---- patients ------------------------------------------------------------

/** @type {Patient|null} */
let patient = null;

/** @param {string} iso YYYY-MM-DD */
function dob(iso) {
  const [y, m, d] = (iso || '').split('-').map(Number);
  if (!y) return '';
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { dateStyle: 'medium' });
}

/** @param {Patient|null} p */
function choose(p) {
  patient = p;
  ui.chosen.hidden = !p;
  ui.pick.hidden = !!p;
  ui.chosenText.textContent = p ? `${p.name}, born ${dob(p.date_of_birth)}` : '';
  if (p) ui.start.focus();
}

ui.change.addEventListener('click', () => {
  choose(null);
  ui.q.focus();
});

ui.search.addEventListener('submit', (ev) => {
  ev.preventDefault();
  busy(ui.find, async () => {
    try {
      /** @type {{patients: Patient[]}} */
      const r = await get('/api/v1/patients?q=' + encodeURIComponent(ui.q.value.trim()));
      const list = r.patients || [];
      say(ui.resultsStatus, list.length ? `${list.length} found.` : 'No patient found. Add a new patient below.');
      ui.results.replaceChildren(...list.map((p) => {
        const b = h('button', { type: 'button', dataset: { patient: p.id } }, 'Choose', h('span', { className: 'sr-only' }, ` ${p.name}`));
        b.addEventListener('click', () => {
          ui.results.replaceChildren();
          say(ui.resultsStatus, '');
          choose(p);
        });
        return h('li', { className: 'item patient' },
          h('div', {}, h('p', { className: 'item-title' }, p.name), h('p', { className: 'hint' }, `Born ${dob(p.date_of_birth)}`)), b);
      }));
    } catch (err) {
      problem(err);
    }
  });
});

ui.newPatient.addEventListener('click', () => {
  const open = ui.patientForm.hidden;
  ui.patientForm.hidden = !open;
  ui.newPatient.setAttribute('aria-expanded', open ? 'true' : 'false');
  if (open) {
    ui.pName.value = ui.q.value.trim();
    ui.pName.focus();
  }
});

ui.patientForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  busy(ui.pSubmit, async () => {
    try {
      /** @type {Patient} */
      const p = await post('/api/v1/patients', {
        name: ui.pName.value.trim(), date_of_birth: ui.pDob.value, email: ui.pEmail.value.trim(),
        phone: ui.pPhone.value.trim(), state: ui.pState.value.trim().toUpperCase(),
      });
      ui.patientForm.reset();
      ui.patientForm.hidden = true;
      ui.newPatient.setAttribute('aria-expanded', 'false');
      done(`Patient ${p.name} added.`);
      choose(p);
    } catch (err) {
      problem(err);
    }
  });
});

// ---- scheduling ------------------------------------------------------------

/** The value of a datetime-local input for a date. @param {Date} d */
function localInput(d) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** RFC 3339 (UTC) from a datetime-local value, '' when empty or invalid. @param {string} v */
function rfc3339(v) {
  if (!v) return '';
  const d = new Date(v); // a datetime-local value parses as local time
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** The next quarter hour from now, for the start field. */
function nextSlot() {
  const d = new Date(Date.now() + 15 * 60_000);
  d.setMinutes(Math.ceil(d.getMinutes() / 15) * 15, 0, 0);
  return d;
}

ui.visitForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (!patient) {
    say(ui.error, 'Choose a patient first: find one by name, or add a new patient.');
    ui.q.focus();
    return;
  }
  const start = rfc3339(ui.start.value);
  if (!start) {
    say(ui.error, 'Enter the date and time the visit starts.');
    ui.start.focus();
    return;
  }
  const p = patient;
  busy(ui.schedule, async () => {
    try {
      /** @type {Visit} */
      const v = await post('/api/v1/visits', {
        patient_id: p.id, start, duration_minutes: Number(ui.duration.value), reason: ui.reason.value.trim(),
      });
      ui.reason.value = '';
      choose(null);
      done(`Visit with ${p.name} scheduled for ${when(v.scheduled_start)}.`);
      anchor = startOfDay(new Date(v.scheduled_start || Date.now()));
      await load();
      const item = ui.visits.querySelector(`[data-visit-id="${v.id}"]`);
      if (item) /** @type {HTMLElement} */ (item).focus();
    } catch (err) {
      problem(err);
    }
  });
});

// ---- the schedule ------------------------------------------------------------

/** @type {'day'|'week'} */
let view = 'week';
let anchor = startOfDay(new Date());

/** @param {Date} d */
function startOfDay(d) {
  const x = new Date(d);
  x.setHours(0, 0, 0, 0);
  return x;
}

/** @param {Date} d @param {number} n */
function addDays(d, n) {
  const x = new Date(d);
  x.setDate(x.getDate() + n);
  return x;
}

function range() {
  const from = anchor;
  const to = addDays(anchor, view === 'day' ? 1 : 7);
  return { from, to };
}

function showRange() {
  const { from, to } = range();
  const fmt = (/** @type {Date} */ d) => d.toLocaleDateString(undefined, { weekday: 'short', month: 'short', day: 'numeric' });
  ui.rangeLabel.textContent = view === 'day' ? fmt(from) : `${fmt(from)} – ${fmt(addDays(to, -1))}`;
  ui.viewDay.setAttribute('aria-pressed', view === 'day' ? 'true' : 'false');
  ui.viewWeek.setAttribute('aria-pressed', view === 'week' ? 'true' : 'false');
}

/** @param {string|undefined} iso */
function timeOnly(iso) {
  return iso ? new Date(iso).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' }) : '';
}

/** @param {string|undefined} iso */
function dayOf(iso) {
  return iso ? new Date(iso).toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric' }) : '';
}

/**
 * @param {Visit} v
 * @returns {HTMLElement}
 */
function visitItem(v) {
  const name = v.patient_name || 'No patient';
  const time = v.scheduled_start ? `${timeOnly(v.scheduled_start)} – ${timeOnly(v.scheduled_end)}` : `Unscheduled, created ${when(v.created_at)}`;
  const item = h('li', { className: 'item visit' + (CLOSED.has(v.status) ? ' done' : ''), tabIndex: -1, dataset: { visitId: v.id, status: v.status } },
    h('div', {},
      h('p', { className: 'item-title' }, `${time} · ${name}`, ' ',
        h('span', { className: 'tag' + (v.status === 'waiting' ? ' tag-warn' : v.status === 'in_progress' ? ' tag-ok' : '') }, STATUS[v.status] || v.status)),
      v.reason ? h('p', { className: 'hint' }, v.reason) : null,
      h('p', { className: 'hint mono' }, `Visit ${shortID(v.id)}`)));
  const actions = h('div', { className: 'actions' });
  const label = ` the visit with ${name} at ${time}`;
  const act = (/** @type {string} */ action, /** @type {string} */ text, /** @type {string} */ cls, /** @type {() => void} */ fn) => {
    const b = h('button', { type: 'button', className: cls, dataset: { action } }, text, h('span', { className: 'sr-only' }, label));
    b.addEventListener('click', fn);
    actions.append(b);
  };
  if (CLOSED.has(v.status)) {
    // Afterwards: the visit's chat, kept with it (reading it is audited).
    act('chat', 'Chat transcript', '', () => transcript(v, item));
    item.append(actions);
    return item;
  }
  act('join', v.status === 'waiting' ? 'Open (patient waiting)' : 'Open', 'primary', () => join(v.id));
  if (v.patient_id) act('invite', 'Patient link', '', () => invite(v));
  act('team', 'Care team', '', () => openCareTeam(v.id));
  if (v.status === 'scheduled' && v.scheduled_start) act('reschedule', 'Reschedule', '', () => reschedule(v));
  if (v.status === 'scheduled' || v.status === 'waiting') act('cancel', 'Cancel', '', () => close(v, 'cancel'));
  if (v.status === 'scheduled' && v.scheduled_start && Date.parse(v.scheduled_start) <= Date.now()) {
    act('no-show', 'Mark no-show', '', () => close(v, 'no-show'));
  }
  item.append(actions);
  return item;
}

/**
 * Shows a closed visit's chat under its item, in order (GET …/chat).
 * @param {Visit} v @param {HTMLElement} item
 */
async function transcript(v, item) {
  const old = item.querySelector('.transcript');
  if (old) { old.remove(); return; }
  const box = h('div', { className: 'transcript', role: 'region', aria: { label: 'Chat transcript' } });
  item.append(box);
  try {
    /** @type {{messages: {seq: number, role: string, at: string, text: string, mine: boolean}[]}} */
    const r = await get(`/api/v1/visits/${encodeURIComponent(v.id)}/chat`);
    const list = r.messages || [];
    box.append(list.length === 0 ? h('p', { className: 'hint' }, 'No chat messages in this visit.')
      : h('ol', { className: 'chat-log' }, ...list.map((m) => h('li', { className: 'chat-msg', dataset: { seq: String(m.seq) } },
        h('p', { className: 'chat-head' }, `${m.mine ? 'You' : m.role === 'patient' ? 'Patient' : 'Provider'} · ${when(m.at)}`),
        h('p', { className: 'chat-text' }, m.text)))));
  } catch (err) {
    box.append(h('p', { className: 'error', role: 'alert' }, err instanceof Error ? err.message : 'The transcript could not be loaded.'));
  }
}

/** @param {Visit[]} visits */
function render(visits) {
  ui.loading.hidden = true;
  ui.empty.hidden = visits.length > 0;
  /** @type {HTMLElement[]} */
  const out = [];
  let day = '';
  for (const v of visits) {
    const d = dayOf(v.scheduled_start || v.created_at);
    if (view === 'week' && d !== day) {
      day = d;
      out.push(h('li', { className: 'day-head' }, h('h3', {}, d)));
    }
    out.push(visitItem(v));
  }
  ui.visits.replaceChildren(...out);
}

async function load() {
  showRange();
  const { from, to } = range();
  /** @type {{visits: Visit[]}} */
  const r = await get(`/api/v1/visits?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
  render(r.visits || []);
}

/** @param {() => void} change */
function move(change) {
  change();
  load().catch(problem);
}

ui.viewDay.addEventListener('click', () => move(() => { view = 'day'; }));
ui.viewWeek.addEventListener('click', () => move(() => { view = 'week'; }));
ui.prev.addEventListener('click', () => move(() => { anchor = addDays(anchor, view === 'day' ? -1 : -7); }));
ui.next.addEventListener('click', () => move(() => { anchor = addDays(anchor, view === 'day' ? 1 : 7); }));
ui.today.addEventListener('click', () => move(() => { anchor = startOfDay(new Date()); }));
ui.refresh.addEventListener('click', () => busy(ui.refresh, () => load().catch(problem)));

/** @param {Visit} v @param {'cancel'|'no-show'} what */
async function close(v, what) {
  const name = v.patient_name || 'the patient';
  const yes = await confirmAction(what === 'cancel'
    ? { title: 'Cancel this visit?', message: `The visit with ${name} at ${when(v.scheduled_start)} is cancelled and its link stops working.`, confirm: 'Cancel visit', danger: true }
    : { title: 'Mark as no-show?', message: `${name} did not come to the visit at ${when(v.scheduled_start)}. The visit closes and its link stops working.`, confirm: 'Mark no-show', danger: true });
  if (!yes) return;
  try {
    await post(`/api/v1/visits/${encodeURIComponent(v.id)}/${what}`, {});
    done(what === 'cancel' ? 'Visit cancelled.' : 'Visit marked as a no-show.');
    if (ui.invite.dataset.visit === v.id) ui.invite.hidden = true;
    await load();
  } catch (err) {
    problem(err);
  }
}

/** @param {Visit} v */
function reschedule(v) {
  const before = /** @type {HTMLElement|null} */ (document.activeElement);
  const start = /** @type {HTMLInputElement} */ (h('input', { id: 'rs-start', type: 'datetime-local', required: true, value: localInput(new Date(v.scheduled_start || Date.now())) }));
  const minutes = v.scheduled_start && v.scheduled_end ? Math.round((Date.parse(v.scheduled_end) - Date.parse(v.scheduled_start)) / 60_000) : 30;
  const duration = /** @type {HTMLInputElement} */ (h('input', { id: 'rs-duration', type: 'number', min: '5', max: '240', step: '5', required: true, value: String(minutes) }));
  const err = h('p', { className: 'error', role: 'alert', hidden: true });
  const ok = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', id: 'rs-ok', className: 'primary' }, 'Move visit'));
  const cancel = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', id: 'rs-cancel' }, 'Keep the time'));
  const form = h('form', { className: 'form', method: 'dialog' },
    h('h2', { id: 'rs-title' }, `Reschedule the visit with ${v.patient_name || 'the patient'}`),
    h('div', { className: 'field' }, h('label', { htmlFor: 'rs-start' }, 'New start'), start),
    h('div', { className: 'field' }, h('label', { htmlFor: 'rs-duration' }, 'Length in minutes'), duration),
    err, h('div', { className: 'actions' }, cancel, ok));
  const dlg = /** @type {HTMLDialogElement} */ (h('dialog', { className: 'dialog', aria: { labelledby: 'rs-title' } }, form));
  document.body.append(dlg);
  cancel.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (before && before.isConnected) before.focus();
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(ok, async () => {
      try {
        await post(`/api/v1/visits/${encodeURIComponent(v.id)}/reschedule`, { start: rfc3339(start.value), duration_minutes: Number(duration.value) });
        dlg.close();
        done('Visit moved. If the patient already has the link, it still works; send them the new time.');
        await load();
      } catch (e) {
        say(err, describe(e));
        start.focus();
      }
    });
  });
  dlg.showModal();
  start.focus();
}

// ---- the patient's link ------------------------------------------------------------

/** @type {Invite|null} */
let current = null;

/** @param {Visit} v @param {Invite} inv */
function showInvite(v, inv) {
  current = inv;
  ui.invite.dataset.visit = v.id;
  ui.inviteLink.value = inv.invite_url;
  ui.inviteLang.value = inv.lang || 'en';
  ui.inviteText.textContent = `For ${v.patient_name || 'the patient'}: the link works once, from ${when(inv.usable_from)} until ${when(inv.usable_until)}. `
    + 'The patient confirms their date of birth. A new link withdraws the earlier one.';
  ui.inviteIcs.hidden = !inv.ics;
  ui.invite.hidden = false;
  ui.invite.focus();
}

/** @param {Visit} v */
async function invite(v) {
  say(ui.inviteStatus, '');
  try {
    showInvite(v, await post(`/api/v1/visits/${encodeURIComponent(v.id)}/invite`, { lang: ui.inviteLang.value }));
    done('');
  } catch (err) {
    problem(err);
  }
}

// Another language is another link: the language travels with the invite.
ui.inviteLang.addEventListener('change', async () => {
  const id = ui.invite.dataset.visit || '';
  if (!id) return;
  try {
    /** @type {Invite} */
    const inv = await post(`/api/v1/visits/${encodeURIComponent(id)}/invite`, { lang: ui.inviteLang.value });
    current = inv;
    ui.inviteLink.value = inv.invite_url;
    ui.inviteIcs.hidden = !inv.ics;
    say(ui.inviteStatus, 'A new link in the chosen language replaced the earlier one.');
  } catch (err) {
    say(ui.inviteStatus, describe(err));
  }
});
ui.inviteCopy.addEventListener('click', () => copy(ui.inviteLink.value, ui.inviteStatus, ui.inviteLink));
ui.inviteIcs.addEventListener('click', () => {
  if (!current || !current.ics) return;
  const url = URL.createObjectURL(new Blob([current.ics], { type: 'text/calendar' }));
  const a = /** @type {HTMLAnchorElement} */ (h('a', { href: url, download: 'video-visit.ics', hidden: true }));
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  say(ui.inviteStatus, 'Calendar file downloaded.');
});
ui.inviteEmail.addEventListener('click', () => busy(ui.inviteEmail, async () => {
  const id = ui.invite.dataset.visit || '';
  try {
    /** @type {Invite} */
    const inv = await post(`/api/v1/visits/${encodeURIComponent(id)}/invite`, { email: true, lang: ui.inviteLang.value });
    current = inv;
    ui.inviteLink.value = inv.invite_url;
    say(ui.inviteStatus, 'A new link was emailed to the patient; the earlier link no longer works.');
  } catch (err) {
    say(ui.inviteStatus, err instanceof APIError && err.code === 'no_smtp'
      ? 'Email is not set up on this server: copy the link or send the calendar file yourself.'
      : describe(err));
  }
}));
ui.inviteRevoke.addEventListener('click', async () => {
  const id = ui.invite.dataset.visit || '';
  const yes = await confirmAction({ title: 'Withdraw the link?', message: 'The patient can no longer use it. You can create a new one later.', confirm: 'Withdraw', danger: true });
  if (!yes) return;
  try {
    await post(`/api/v1/visits/${encodeURIComponent(id)}/invite/revoke`, {});
    ui.invite.hidden = true;
    current = null;
    done('The link was withdrawn.');
  } catch (err) {
    problem(err);
  }
});
ui.inviteClose.addEventListener('click', () => {
  ui.invite.hidden = true;
  ui.inviteLink.value = '';
  current = null;
});

ui.startNow.addEventListener('click', () => busy(ui.startNow, async () => {
  try {
    /** @type {Visit} */
    const v = await post('/api/v1/visits', {});
    say(ui.status, 'Visit created; opening the call…');
    join(v.id);
  } catch (err) {
    problem(err);
  }
}));

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
  byId('nav-outbox').hidden = !s.view.dev_outbox; // development without SMTP: mail is kept there
  ui.start.value = localInput(nextSlot());
  try {
    await load();
  } catch (err) {
    problem(err);
  }
  document.body.dataset.loaded = 'true';
}

main();
