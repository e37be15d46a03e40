// What the signed-in staff pages (/admin, /audit, /incidents, /provider,
// /recordings, /outbox) share: the session, the account bar with sign-out
// buttons (its markup is in chrome.html), the idle logoff, and the page's
// status and error lines.

import { APIError, describe, homeFor, loadSession } from './api.js';
import { byId, say } from './dom.js';
import { startIdleLogoff } from './session.js';

/** @typedef {import('./api.js').SessionView} SessionView */
/** @typedef {import('./session.js').IdleLogoff} IdleLogoff */
/** @typedef {'admin'|'provider'} StaffKind */

/**
 * Loads the session for a page meant for `kinds` (one kind, or a list),
 * sends anyone else to their own page (or to /signin), fills the account
 * bar and starts the idle logoff. Resolves null when the page is being left.
 * @param {StaffKind|StaffKind[]} kinds
 * @param {import('./session.js').IdleOptions} [idleOpts]
 * @returns {Promise<{view: SessionView, idle: IdleLogoff}|null>}
 */
export async function startStaffPage(kinds, idleOpts) {
  /** @type {SessionView} */
  let view;
  try {
    view = await loadSession();
  } catch (err) {
    if (err instanceof APIError && err.status === 401) return null; // on the way to /signin
    fail(describe(err));
    return null;
  }
  if (![kinds].flat().includes(/** @type {StaffKind} */ (view.kind))) {
    location.replace(homeFor(view.kind));
    return null;
  }
  const idle = startIdleLogoff(view, idleOpts);
  const who = document.getElementById('who');
  if (who) who.textContent = view.name || view.email || '';
  document.getElementById('signout')?.addEventListener('click', () => idle.signOut(false));
  document.getElementById('signout-all')?.addEventListener('click', () => idle.signOut(true));
  document.body.dataset.state = 'ready';
  return { view, idle };
}

/**
 * Shows an error that stops the page (tests read data-state="failed").
 * @param {string} message
 */
export function fail(message) {
  document.body.dataset.state = 'failed';
  say(byId('error'), message);
}

/**
 * Says what went wrong in the page's error line (#error), in place of any
 * status (#status).
 * @param {unknown} err
 */
export function problem(err) {
  const status = document.getElementById('status');
  if (status) say(status, '');
  say(byId('error'), describe(err));
}

/**
 * Says what was done in the page's status line (#status), in place of any
 * error (#error).
 * @param {string} text
 */
export function done(text) {
  say(byId('error'), '');
  say(byId('status'), text);
}
