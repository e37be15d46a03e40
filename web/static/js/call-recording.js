// The call page's recording consent and controls (signed-in visits only:
// demo links have no session to answer with).
//
// Provider: "Ask to record" → the patient answers in a dialog → "Start
// recording" / "Stop recording"; declines and withdrawals show in the
// panel. Patient: the consent dialog, and "Stop recording and withdraw
// consent" at any time (which stops the recording at once). Both pages show
// the recording indicator (an icon and the word, in a status region) only
// while the recorder reports that it is writing media (status
// "recording"), and "Recording is not working" when it is switched on but
// no media is being written: the indicator follows the bytes, not the
// switch.
//
// State comes from GET /api/v1/visits/:id/recording, polled every 2 s
// while the call is live (not audited, no PHI) and taken from the answer of
// every action.

import { describe, get, post } from './api.js';
import { byId, say } from './dom.js';

/**
 * @typedef {object} RecordingState
 * @property {string} visit_id
 * @property {boolean} requested   asked and not answered yet
 * @property {string} [requested_at]
 * @property {'none'|'given'|'declined'|'withdrawn'} consent
 * @property {string} [consent_at]
 * @property {boolean} recording  the switch is on
 * @property {'off'|'starting'|'recording'|'not_working'} status  what the recorder reports
 * @property {string} [started_at]
 * @property {string} [stopped_at]
 * @property {string} [stop_reason]
 */

const POLL_MS = 2000;

/**
 * @param {object} o
 * @param {string} o.visit
 * @param {'provider'|'patient'} o.mode
 * @param {() => boolean} o.live  true while the call is connected (or reconnecting)
 * @param {(st: RecordingState|null) => void} [o.onState]  for tests (window.openvisit.recording)
 */
export function startRecordingUI(o) {
  const ui = {
    indicator: byId('rec-indicator'),
    panel: byId('rec'),
    text: byId('rec-text'),
    error: byId('rec-error'),
    ask: /** @type {HTMLButtonElement} */ (byId('rec-ask')),
    start: /** @type {HTMLButtonElement} */ (byId('rec-start')),
    stop: /** @type {HTMLButtonElement} */ (byId('rec-stop')),
    answer: /** @type {HTMLButtonElement} */ (byId('rec-answer')),
    withdraw: /** @type {HTMLButtonElement} */ (byId('rec-withdraw')),
    dialog: /** @type {HTMLDialogElement} */ (byId('rec-consent')),
    allow: /** @type {HTMLButtonElement} */ (byId('rec-allow')),
    deny: /** @type {HTMLButtonElement} */ (byId('rec-deny')),
  };
  const base = `/api/v1/visits/${encodeURIComponent(o.visit)}/recording`;
  /** @type {RecordingState|null} */
  let state = null;
  let inflight = false;
  let acting = false;
  /** bumped by every action, so that a poll answered meanwhile is dropped as stale */
  let generation = 0;
  /** the dialog is closing because the patient answered */
  let answered = false;
  /** the request (requested_at) the patient closed the dialog on without answering */
  let dismissed = '';
  /** @type {HTMLElement|null} */
  let focusBefore = null;

  const time = (/** @type {string|undefined} */ iso) => (iso ? new Date(iso).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' }) : '');

  /** Sets text only when it changes, so a status region does not repeat itself every poll. */
  const setText = (/** @type {HTMLElement} */ el, /** @type {string} */ text) => {
    if (el.textContent !== text) el.textContent = text;
  };

  /** @param {RecordingState|null} st */
  function render(st) {
    state = st;
    if (o.onState) o.onState(st);
    const status = st ? st.status : 'off';
    setText(ui.indicator, status === 'recording' ? 'Recording' : status === 'not_working' ? 'Recording is not working' : '');
    ui.indicator.classList.toggle('warning', status === 'not_working');
    document.body.classList.toggle('recording', status === 'recording');
    if (!st) {
      ui.panel.hidden = true;
      closeDialog();
      return;
    }
    if (o.mode === 'provider') renderProvider(st);
    else renderPatient(st);
  }

  /** @param {RecordingState} st */
  function renderProvider(st) {
    ui.panel.hidden = false;
    let text;
    if (st.status === 'recording') text = `Recording since ${time(st.started_at)}. The patient can stop it at any time.`;
    else if (st.status === 'starting') text = 'Starting the recording…';
    else if (st.status === 'not_working') text = 'Recording is not working: no audio or video is being saved. The clinic\'s admins have been alerted. You can stop and start again.';
    else if (st.requested) text = 'Waiting for the patient to answer your request to record…';
    else if (st.consent === 'given') text = st.stop_reason === 'stopped' && st.stopped_at && st.consent_at && st.stopped_at > st.consent_at
      ? 'Recording stopped. The patient\'s consent still holds; you can start again.'
      : 'The patient agreed to recording. You can start recording.';
    else if (st.consent === 'declined') text = 'The patient declined recording. Nothing is recorded.';
    else if (st.consent === 'withdrawn') text = st.stop_reason === 'consent_withdrawn'
      ? 'The patient withdrew consent and the recording stopped.'
      : 'The patient withdrew consent to recording.';
    else text = 'Recording needs the patient\'s consent: ask first.';
    setText(ui.text, text);
    ui.ask.hidden = st.recording || st.requested || st.consent === 'given';
    ui.ask.textContent = st.consent === 'declined' || st.consent === 'withdrawn' ? 'Ask again to record' : 'Ask to record';
    ui.start.hidden = st.recording || st.consent !== 'given';
    ui.stop.hidden = !st.recording;
  }

  /** @param {RecordingState} st */
  function renderPatient(st) {
    const given = st.consent === 'given';
    ui.panel.hidden = !st.recording && !st.requested && st.consent === 'none';
    let text;
    if (st.status === 'recording') text = 'This visit is being recorded. You can stop it at any time.';
    else if (st.status === 'starting') text = 'Recording is about to start. You can stop it at any time.';
    else if (st.status === 'not_working') text = 'Recording is not working right now: nothing is being saved.';
    else if (st.requested) text = 'Your provider asked to record this visit.';
    else if (given) text = 'You allowed recording. It has not started.';
    else if (st.consent === 'declined') text = 'You did not allow recording. Nothing is recorded.';
    else if (st.consent === 'withdrawn') text = 'You withdrew your consent. Nothing more is recorded.';
    else text = '';
    setText(ui.text, text);
    ui.withdraw.hidden = !(given || st.recording) || st.requested;
    ui.withdraw.textContent = st.recording ? 'Stop recording and withdraw consent' : 'Withdraw consent to recording';
    const pending = st.requested ? st.requested_at || 'yes' : '';
    ui.answer.hidden = !pending || ui.dialog.open;
    if (pending && pending !== dismissed && !ui.dialog.open && !acting) openDialog();
    if (!pending) {
      dismissed = '';
      closeDialog();
    }
  }

  function openDialog() {
    focusBefore = /** @type {HTMLElement|null} */ (document.activeElement);
    ui.answer.hidden = true;
    ui.dialog.showModal();
    ui.deny.focus(); // the choice that records nothing has the focus
  }

  function closeDialog() {
    if (!ui.dialog.open) return;
    ui.dialog.close();
  }

  ui.dialog.addEventListener('close', () => {
    if (focusBefore && focusBefore.isConnected) focusBefore.focus();
    focusBefore = null;
    if (!answered && state && state.requested) {
      // Closed with Escape: no answer; the request stays open.
      dismissed = state.requested_at || 'yes';
      ui.answer.hidden = false;
    }
    answered = false;
  });

  async function poll() {
    if (inflight || acting) return;
    if (!o.live()) {
      if (state) render(null);
      return;
    }
    inflight = true;
    const gen = generation;
    try {
      const st = await get(base, { redirect401: false });
      if (!acting && gen === generation) render(st);
    } catch {
      // The next poll tries again; the call page reports lost sessions.
    } finally {
      inflight = false;
    }
  }

  /**
   * @param {HTMLButtonElement} button
   * @param {string} path  under …/recording
   * @param {object} body
   */
  async function act(button, path, body) {
    if (acting) return;
    acting = true;
    generation++;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const st = await post(`${base}/${path}`, body, { redirect401: false });
      say(ui.error, '');
      render(st);
    } catch (err) {
      say(ui.error, describe(err));
    } finally {
      acting = false;
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }

  ui.ask.addEventListener('click', () => act(ui.ask, 'request', {}));
  ui.start.addEventListener('click', () => act(ui.start, 'start', {}));
  ui.stop.addEventListener('click', () => act(ui.stop, 'stop', {}));
  ui.withdraw.addEventListener('click', () => act(ui.withdraw, 'withdraw', {}));
  ui.answer.addEventListener('click', () => openDialog());
  const answer = (/** @type {boolean} */ accept) => {
    answered = true; // the dialog's close handler must not count this as dismissed
    ui.dialog.close();
    act(accept ? ui.allow : ui.deny, 'consent', { accept });
  };
  ui.allow.addEventListener('click', () => answer(true));
  ui.deny.addEventListener('click', () => answer(false));

  setInterval(poll, POLL_MS);
  poll();
}
