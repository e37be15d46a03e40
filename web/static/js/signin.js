// The sign-in page: email, password and an authenticator code (or a
// recovery code, or a passkey); or a passkey alone. Admins go on to
// /admin, providers to /provider.

import { APIError, describe, get, homeFor, post } from './api.js';
import { busy, byId, say } from './dom.js';
import { getPasskey, passkeyProblem, passkeysSupported } from './passkeys.js';

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

const passkeyFactor = /** @type {HTMLButtonElement} */ (byId('passkey-factor'));
const passkeySignin = /** @type {HTMLButtonElement} */ (byId('passkey-signin'));

/**
 * Runs a passkey ceremony of purpose and sends its answer with extra to
 * path; on success, goes to the user's home page.
 * @param {HTMLButtonElement} button
 * @param {'signin'|'second_factor'} purpose
 * @param {string} path
 * @param {Record<string, string>} extra
 * @param {string} answerField  the body member the passkey's answer goes in
 */
function withPasskey(button, purpose, path, extra, answerField) {
  say(error, '');
  busy(button, async () => {
    try {
      const options = await post('/api/v1/auth/passkey/begin', { purpose }, { redirect401: false });
      const answer = await getPasskey(options);
      /** @type {SessionView} */
      const view = await post(path, { ...extra, [answerField]: answer }, { redirect401: false });
      password.value = '';
      location.replace(homeFor(view.kind));
    } catch (err) {
      say(error, passkeyProblem(err) || describe(err));
    }
  });
}

passkeySignin.addEventListener('click', () => withPasskey(passkeySignin, 'signin', '/api/v1/auth/passkey/login', {}, 'credential'));

// The passkey as the second factor: the address and password are checked
// with it, in one request, like a code.
passkeyFactor.addEventListener('click', () => {
  if (!email.reportValidity() || !password.reportValidity()) return;
  withPasskey(passkeyFactor, 'second_factor', '/api/v1/auth/login', { email: email.value.trim(), password: password.value }, 'passkey');
});

async function main() {
  if (passkeysSupported) {
    byId('passkey-section').hidden = false;
    passkeyFactor.hidden = false;
  }
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
