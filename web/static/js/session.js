// Automatic logoff for the staff pages. The server ends a session after
// idle_seconds without activity (and at ends_at regardless); this module
// makes the page follow: a warning a minute before with "Stay signed in",
// and at the deadline the page leaves for /signin?expired=1 so nothing stays
// on screen.
//
// Times come from the server's clock: the offset between its `now` and ours
// is measured on every answer, so a wrong client clock does not matter.
// Another tab may extend the session, so the page re-reads it (passively,
// GET /auth/session does not count as activity) now and then, when it
// becomes visible again, and before acting on an expiry. Tabs also tell each
// other through a BroadcastChannel when they extend or end the session.

import { get, post, setCSRF, toSignIn } from './api.js';
import { h } from './dom.js';

/** @typedef {import('./api.js').SessionView} SessionView */

const WARN_MS = 60_000;
const CHECK_MS = 60_000; // passive re-read while far from the deadline
const CHECK_NEAR_MS = 5_000; // … and while the warning shows
const CHANNEL = 'openvisit-session';

/**
 * @typedef {object} IdleOptions
 * @property {() => boolean} [keepAliveWhen] when it returns true at warning
 *   time, the session is extended without asking (e.g. during a live call,
 *   which is activity the server cannot see)
 */

/**
 * Starts the idle logoff for the page's session.
 * @param {SessionView} view
 * @param {IdleOptions} [opts]
 */
export function startIdleLogoff(view, opts = {}) {
  return new IdleLogoff(view, opts);
}

export class IdleLogoff {
  /** @param {SessionView} view @param {IdleOptions} opts */
  constructor(view, opts) {
    /** @private */ this.opts = opts;
    /** @private deadline on our clock, ms */ this.deadline = 0;
    /** @private the deadline is the absolute limit, which cannot be extended */ this.absolute = false;
    /** @private */ this.idleSeconds = view.idle_seconds;
    /** @private @type {ReturnType<typeof setTimeout>|undefined} */ this.warnTimer = undefined;
    /** @private @type {ReturnType<typeof setTimeout>|undefined} */ this.endTimer = undefined;
    /** @private @type {ReturnType<typeof setTimeout>|undefined} */ this.checkTimer = undefined;
    /** @private @type {ReturnType<typeof setInterval>|undefined} */ this.tick = undefined;
    /** @private @type {HTMLDialogElement|null} */ this.dialog = null;
    /** @private @type {HTMLElement|null} */ this.countdown = null;
    /** @private */ this.ending = false;
    /** @private the user has seen the time-limit notice */ this.noticed = false;
    /** @private @type {BroadcastChannel|null} */ this.channel = null;
    if (typeof BroadcastChannel === 'function') {
      this.channel = new BroadcastChannel(CHANNEL);
      this.channel.addEventListener('message', (ev) => {
        if (ev.data === 'extended') this.check();
        else if (ev.data === 'signedout') toSignIn('signedout');
      });
    }
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.check();
    });
    this.update(view);
  }

  /**
   * Takes new session times (from any SessionView the page receives).
   * @param {SessionView} view
   */
  update(view) {
    setCSRF(view.csrf_token);
    const offset = Date.parse(view.now) - Date.now(); // server minus client
    const idle = Date.parse(view.idle_ends_at);
    const abs = Date.parse(view.ends_at);
    this.absolute = abs <= idle;
    this.deadline = Math.min(idle, abs) - offset;
    this.idleSeconds = view.idle_seconds;
    this.schedule();
  }

  /** Extends the session (the user is here) and tells the other tabs. */
  async stay() {
    try {
      /** @type {SessionView} */
      const view = await post('/api/v1/auth/keepalive', {});
      this.update(view);
      this.channel?.postMessage('extended');
    } catch {
      // 401 has already gone to /signin; anything else: the next check decides.
    }
  }

  /**
   * Signs out here (everywhere = every session of the user) and leaves.
   * @param {boolean} [everywhere]
   */
  async signOut(everywhere) {
    this.ending = true;
    this.clearTimers();
    try {
      await post(everywhere ? '/api/v1/auth/logout-all' : '/api/v1/auth/logout', {}, { redirect401: false });
    } catch {
      // Signed out already, or the server is unreachable: leave either way.
    }
    this.channel?.postMessage('signedout');
    toSignIn('signedout');
  }

  /** @private */
  clearTimers() {
    clearTimeout(this.warnTimer);
    clearTimeout(this.endTimer);
    clearTimeout(this.checkTimer);
    clearInterval(this.tick);
  }

  /** @private */
  schedule() {
    if (this.ending) return;
    this.clearTimers();
    const left = this.deadline - Date.now();
    if (left <= WARN_MS) {
      this.warn();
    } else {
      this.closeDialog();
      this.warnTimer = setTimeout(() => this.warn(), left - WARN_MS);
    }
    this.endTimer = setTimeout(() => this.expire(), Math.max(0, left));
    this.checkTimer = setTimeout(() => this.check(), left <= WARN_MS ? CHECK_NEAR_MS : CHECK_MS);
  }

  /** Re-reads the session passively: another tab may have extended or ended it. @private */
  async check() {
    if (this.ending) return;
    try {
      this.update(await get('/api/v1/auth/session', { redirect401: false }));
    } catch (err) {
      if (/** @type {any} */ (err).status === 401) this.leave();
      else this.checkTimer = setTimeout(() => this.check(), CHECK_NEAR_MS);
    }
  }

  /** @private */
  warn() {
    if (this.ending) return;
    if (!this.absolute && this.opts.keepAliveWhen && this.opts.keepAliveWhen()) {
      this.stay();
      return;
    }
    if (this.absolute && this.noticed) return;
    this.openDialog();
    this.tick = setInterval(() => this.showCountdown(), 1000);
    this.showCountdown();
  }

  /** The deadline passed on our clock: confirm with the server, then leave. @private */
  async expire() {
    if (this.ending) return;
    try {
      /** @type {SessionView} */
      const view = await get('/api/v1/auth/session', { redirect401: false });
      const offset = Date.parse(view.now) - Date.now();
      const deadline = Math.min(Date.parse(view.idle_ends_at), Date.parse(view.ends_at)) - offset;
      if (deadline - Date.now() > 2000) {
        this.update(view); // extended elsewhere
        return;
      }
      // Our clock is a little ahead of the server's: end it now anyway.
      this.ending = true;
      await post('/api/v1/auth/logout', {}, { redirect401: false }).catch(() => {});
    } catch {
      // 401: the server has ended it already. Unreachable: leave anyway.
    }
    this.leave();
  }

  /** @private */
  leave() {
    this.ending = true;
    this.clearTimers();
    toSignIn('expired');
  }

  /** @private */
  openDialog() {
    if (this.dialog) return;
    const mins = Math.round(this.idleSeconds / 60);
    const text = this.absolute
      ? 'Your session reaches its time limit soon. Finish what you are doing; you will need to sign in again.'
      : `For privacy, you are signed out after ${mins} minutes without activity.`;
    this.countdown = h('p', { className: 'countdown' });
    const buttons = [];
    const out = h('button', { type: 'button', id: 'idle-signout' }, 'Sign out');
    out.addEventListener('click', () => this.signOut(false));
    buttons.push(out);
    /** @type {HTMLButtonElement|null} */
    let stay = null;
    if (!this.absolute) {
      stay = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', id: 'idle-stay', className: 'primary' }, 'Stay signed in'));
      stay.addEventListener('click', () => this.stay());
      buttons.push(stay);
    } else {
      const ok = h('button', { type: 'button', className: 'primary' }, 'OK');
      ok.addEventListener('click', () => { this.noticed = true; this.closeDialog(); });
      buttons.push(ok);
    }
    const dlg = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'idle-dialog', className: 'dialog', aria: { labelledby: 'idle-title', describedby: 'idle-text' } },
      h('h2', { id: 'idle-title' }, 'Are you still there?'),
      h('p', { id: 'idle-text' }, text),
      this.countdown,
      h('div', { className: 'actions' }, ...buttons)));
    // Escape would close the dialog without an answer: treat it as "stay".
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      if (!this.absolute) this.stay();
      else { this.noticed = true; this.closeDialog(); }
    });
    document.body.append(dlg);
    this.dialog = dlg;
    dlg.showModal();
    (stay || out).focus();
  }

  /** @private */
  closeDialog() {
    clearInterval(this.tick);
    if (!this.dialog) return;
    const d = this.dialog;
    this.dialog = null;
    this.countdown = null;
    d.close();
    d.remove();
  }

  /** @private */
  showCountdown() {
    if (!this.countdown) return;
    const s = Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
    this.countdown.textContent = `Signing out in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}.`;
  }
}
