// What the signed-in staff pages (/admin, /provider) share: the session,
// the account bar with sign-out buttons, and the idle logoff.

import { APIError, describe, homeFor, loadSession } from './api.js';
import { byId, say } from './dom.js';
import { startIdleLogoff } from './session.js';

/** @typedef {import('./api.js').SessionView} SessionView */
/** @typedef {import('./session.js').IdleLogoff} IdleLogoff */

/**
 * Loads the session for a page meant for `kind`, sends anyone else to their
 * own page (or to /signin), fills the account bar and starts the idle
 * logoff. Resolves null when the page is being left.
 * @param {'admin'|'provider'} kind
 * @param {import('./session.js').IdleOptions} [idleOpts]
 * @returns {Promise<{view: SessionView, idle: IdleLogoff}|null>}
 */
export async function startStaffPage(kind, idleOpts) {
  /** @type {SessionView} */
  let view;
  try {
    view = await loadSession();
  } catch (err) {
    if (err instanceof APIError && err.status === 401) return null; // on the way to /signin
    fail(describe(err));
    return null;
  }
  if (view.kind !== kind) {
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
