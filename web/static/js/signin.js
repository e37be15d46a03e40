// The sign-in page: email, password and an authenticator code (or a
// recovery code). Admins go on to /admin, providers to /provider.

import { APIError, describe, get, homeFor, post } from './api.js';
import { busy, byId, say } from './dom.js';

/** @typedef {import('./api.js').SessionView} SessionView */

const form = byId('signin');
const email = /** @type {HTMLInputElement} */ (byId('email'));
const password = /** @type {HTMLInputElement} */ (byId('password'));
const code = /** @type {HTMLInputElement} */ (byId('code'));
const recovery = /** @type {HTMLInputElement} */ (byId('recovery'));
const codeField = byId('code-field');
const recoveryField = byId('recovery-field');
const toggle = /** @type {HTMLButtonElement} */ (byId('toggle-recovery'));
const submit = /** @type {HTMLButtonElement} */ (byId('submit'));
const error = byId('error');
const notice = byId('notice');

let useRecovery = false;

/** @param {boolean} on */
function setRecovery(on) {
  useRecovery = on;
  codeField.hidden = on;
  code.disabled = on;
  recoveryField.hidden = !on;
  recovery.disabled = !on;
  toggle.textContent = on ? 'Use an authenticator code instead' : 'Use a recovery code instead';
}

toggle.addEventListener('click', () => {
  setRecovery(!useRecovery);
  (useRecovery ? recovery : code).focus();
});

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  say(error, '');
  /** @type {Record<string, string>} */
  const body = { email: email.value.trim(), password: password.value };
  if (useRecovery) body.recovery_code = recovery.value.trim();
  else body.code = code.value.replace(/\s+/g, '');
  busy(submit, async () => {
    try {
      /** @type {SessionView} */
      const view = await post('/api/v1/auth/login', body, { redirect401: false });
      password.value = '';
      location.replace(homeFor(view.kind));
    } catch (err) {
      say(error, describe(err));
      // A code is single use and time-bound: a fresh one is needed anyway.
      code.value = '';
      recovery.value = '';
      if (err instanceof APIError && err.code === 'invalid_credentials') password.value = '';
      (email.value ? password : email).focus();
    }
  });
});

async function main() {
  const q = new URLSearchParams(location.search);
  if (q.has('expired')) say(notice, 'Your session has ended. Sign in again to continue.');
  else if (q.has('signedout')) say(notice, 'You have signed out.');
  if (location.search) history.replaceState(null, '', location.pathname);
  // Already signed in (another tab)? Go straight on.
  try {
    /** @type {SessionView} */
    const view = await get('/api/v1/auth/session', { redirect401: false });
    if (view.kind === 'admin' || view.kind === 'provider') {
      location.replace(homeFor(view.kind));
      return;
    }
  } catch {
    // Not signed in: the form it is.
  }
  document.body.dataset.state = 'ready';
  email.focus();
}

main();
