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
import { busy, byId, say } from './dom.js';
import { t } from './i18n.js';

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
 * @property {boolean} [awaiting_consent]  paused until someone who joined later answers
 */

const POLL_MS = 2000;

/**
 * @typedef {object} RecordingOptions
 * @property {string} visit
 * @property {'provider'|'patient'} mode
 * @property {() => boolean} live  true while the call is connected (or reconnecting)
 * @property {(st: RecordingState|null) => void} [onState]  for tests (window.openvisit.recording)
 */

/**
 * Shows the recording panel and indicator of the call page, polling the
 * state while the call is live.
 * @param {RecordingOptions} o
 */
export function startRecordingUI(o) {
  const panel = new RecordingPanel(o);
  setInterval(() => panel.poll(), POLL_MS);
  panel.poll();
}

/** @param {string|undefined} iso */
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' }) : '');

/** Sets text only when it changes, so a status region does not repeat itself every poll. @param {HTMLElement} el @param {string} text */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** What the provider's panel says. @param {RecordingState} st */
function providerText(st) {
  if (st.status === 'recording') return `Recording since ${time(st.started_at)}. The patient can stop it at any time.`;
  if (st.status === 'starting') return 'Starting the recording…';
  if (st.status === 'not_working') return 'Recording is not working: no audio or video is being saved. The clinic\'s admins have been alerted. You can stop and start again.';
  if (st.awaiting_consent) return 'Recording paused: someone joined who has not answered the request to record yet. It resumes once they allow it.';
  if (st.requested) return 'Waiting for the patient to answer your request to record…';
  if (st.consent === 'given') {
    return st.stop_reason === 'stopped' && st.stopped_at && st.consent_at && st.stopped_at > st.consent_at
      ? 'Recording stopped. The patient\'s consent still holds; you can start again.'
      : 'The patient agreed to recording. You can start recording.';
  }
  if (st.consent === 'declined') return 'The patient declined recording. Nothing is recorded.';
  if (st.consent === 'withdrawn') {
    return st.stop_reason === 'consent_withdrawn'
      ? 'The patient withdrew consent and the recording stopped.'
      : 'The patient withdrew consent to recording.';
  }
  return 'Recording needs the patient\'s consent: ask first.';
}

/** What the patient's panel says. @param {RecordingState} st */
function patientText(st) {
  if (st.status === 'recording') return t('call.rec.patient.recording');
  if (st.status === 'starting') return t('call.rec.patient.starting');
  if (st.status === 'not_working') return t('call.rec.patient.not_working');
  if (st.requested) return t('call.rec.patient.requested');
  if (st.awaiting_consent) return t('call.rec.patient.awaiting_consent');
  if (st.consent === 'given') return t('call.rec.patient.given');
  if (st.consent === 'declined') return t('call.rec.patient.declined');
  if (st.consent === 'withdrawn') return t('call.rec.patient.withdrawn');
  return '';
}

class RecordingPanel {
  /** @param {RecordingOptions} o */
  constructor(o) {
    /** @private */ this.o = o;
    /** @private */ this.ui = {
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
    /** @private */ this.base = `/api/v1/visits/${encodeURIComponent(o.visit)}/recording`;
    /** @private @type {RecordingState|null} */ this.state = null;
    /** @private */ this.inflight = false;
    /** @private */ this.acting = false;
    /** @private bumped by every action, so that a poll answered meanwhile is dropped as stale */ this.generation = 0;
    /** @private the dialog is closing because the patient answered */ this.answered = false;
    /** @private the request (requested_at) the patient closed the dialog on without answering */ this.dismissed = '';
    /** @private @type {HTMLElement|null} */ this.focusBefore = null;

    const ui = this.ui;
    ui.dialog.addEventListener('close', () => this.dialogClosed());
    ui.ask.addEventListener('click', () => this.act(ui.ask, 'request', {}));
    ui.start.addEventListener('click', () => this.act(ui.start, 'start', {}));
    ui.stop.addEventListener('click', () => this.act(ui.stop, 'stop', {}));
    ui.withdraw.addEventListener('click', () => this.act(ui.withdraw, 'withdraw', {}));
    ui.answer.addEventListener('click', () => this.openDialog());
    ui.allow.addEventListener('click', () => this.answer(true));
    ui.deny.addEventListener('click', () => this.answer(false));
  }

  /** @private @param {RecordingState|null} st */
  render(st) {
    const ui = this.ui;
    this.state = st;
    if (this.o.onState) this.o.onState(st);
    const status = st ? st.status : 'off';
    setText(ui.indicator, status === 'recording' ? t('call.rec.indicator') : status === 'not_working' ? t('call.rec.indicator_broken') : '');
    ui.indicator.classList.toggle('warning', status === 'not_working');
    document.body.classList.toggle('recording', status === 'recording');
    if (!st) {
      ui.panel.hidden = true;
      this.closeDialog();
      return;
    }
    if (this.o.mode === 'provider') this.renderProvider(st);
    else this.renderPatient(st);
  }

  /** @private @param {RecordingState} st */
  renderProvider(st) {
    const ui = this.ui;
    ui.panel.hidden = false;
    setText(ui.text, providerText(st));
    ui.ask.hidden = st.recording || st.requested || st.consent === 'given';
    ui.ask.textContent = st.consent === 'declined' || st.consent === 'withdrawn' ? 'Ask again to record' : 'Ask to record';
    ui.start.hidden = st.recording || st.consent !== 'given';
    ui.stop.hidden = !st.recording;
  }

  /** @private @param {RecordingState} st */
  renderPatient(st) {
    const ui = this.ui;
    const given = st.consent === 'given';
    ui.panel.hidden = !st.recording && !st.requested && st.consent === 'none';
    setText(ui.text, patientText(st));
    ui.withdraw.hidden = !(given || st.recording) || st.requested;
    ui.withdraw.textContent = st.recording ? t('call.rec.withdraw_stop') : t('call.rec.withdraw');
    const pending = st.requested ? st.requested_at || 'yes' : '';
    ui.answer.hidden = !pending || ui.dialog.open;
    if (pending && pending !== this.dismissed && !ui.dialog.open && !this.acting) this.openDialog();
    if (!pending) {
      this.dismissed = '';
      this.closeDialog();
    }
  }

  /** @private */
  openDialog() {
    this.focusBefore = /** @type {HTMLElement|null} */ (document.activeElement);
    this.ui.answer.hidden = true;
    this.ui.dialog.showModal();
    this.ui.deny.focus(); // the choice that records nothing has the focus
  }

  /** @private */
  closeDialog() {
    if (!this.ui.dialog.open) return;
    this.ui.dialog.close();
  }

  /** @private */
  dialogClosed() {
    if (this.focusBefore && this.focusBefore.isConnected) this.focusBefore.focus();
    this.focusBefore = null;
    if (!this.answered && this.state && this.state.requested) {
      // Closed with Escape: no answer; the request stays open.
      this.dismissed = this.state.requested_at || 'yes';
      this.ui.answer.hidden = false;
    }
    this.answered = false;
  }

  /** @private @param {boolean} accept */
  answer(accept) {
    this.answered = true; // the dialog's close handler must not count this as dismissed
    this.ui.dialog.close();
    this.act(accept ? this.ui.allow : this.ui.deny, 'consent', { accept });
  }

  async poll() {
    if (this.inflight || this.acting) return;
    if (!this.o.live()) {
      if (this.state) this.render(null);
      return;
    }
    this.inflight = true;
    const gen = this.generation;
    try {
      const st = await get(this.base, { redirect401: false });
      if (!this.acting && gen === this.generation) this.render(st);
    } catch {
      // The next poll tries again; the call page reports lost sessions.
    } finally {
      this.inflight = false;
    }
  }

  /**
   * @private
   * @param {HTMLButtonElement} button
   * @param {string} path  under …/recording
   * @param {object} body
   */
  async act(button, path, body) {
    if (this.acting) return;
    this.acting = true;
    this.generation++;
    await busy(button, async () => {
      try {
        const st = await post(`${this.base}/${path}`, body, { redirect401: false });
        say(this.ui.error, '');
        this.render(st);
      } catch (err) {
        say(this.ui.error, describe(err));
      }
    });
    this.acting = false;
  }
}
