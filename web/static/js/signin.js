// The sign-in page: email, password and an authenticator code (or a
// recovery code, or a passkey); or a passkey alone; and a "Sign in with
// <clinic IdP>" button per identity provider. After an identity provider
// that did not confirm a second factor (?sso=second_factor), only the code
// is asked. Admins go on to
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
const sso = byId('sso');
const ssoButtons = byId('sso-buttons');
const ssoOr = byId('sso-or');

/** Why an identity provider sign-in came back here (?sso=<code>). */
const ssoMessages = {
  expired: 'That sign-in took too long or was interrupted. Try again.',
  not_allowed: 'Your clinic account is not in a group that may use OpenVisit. Ask your admin.',
  not_linked: 'An OpenVisit account with your email exists but could not be linked to your clinic account. Ask your admin.',
  unavailable: 'The clinic\'s sign-in service cannot be reached right now. Try again shortly.',
  refused: 'The clinic\'s sign-in did not succeed.',
  no_second_factor: 'Your clinic account did not confirm a second factor, and you have no authenticator set up in OpenVisit. Ask your admin.',
  failed: 'Sign-in failed. Try again.',
};

/** Signing in after the identity provider: only the second factor is asked. */
let secondFactorOnly = false;

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
  const body = secondFactorOnly ? {} : { email: email.value.trim(), password: password.value };
  if (useRecovery) body.recovery_code = recovery.value.trim();
  else body.code = code.value.replace(/\s+/g, '');
  const url = secondFactorOnly ? '/api/v1/auth/oidc/second-factor' : '/api/v1/auth/login';
  busy(submit, async () => {
    try {
      /** @type {SessionView} */
      const view = await post(url, body, { redirect401: false });
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

/** Shows only the second factor: the identity provider vouched for the rest. */
function askSecondFactorOnly() {
  secondFactorOnly = true;
  for (const id of ['email-field', 'password-field']) byId(id).hidden = true;
  email.disabled = true;
  password.disabled = true;
  say(notice, 'Your clinic account did not confirm a second factor. Enter your OpenVisit authenticator code to finish signing in.');
}

/** Adds a "Sign in with <name>" button per identity provider. */
async function showIssuers() {
  try {
    /** @type {{issuers: {id: string, name: string}[], local_passwords: string}} */
    const list = await get('/api/v1/auth/oidc/issuers', { redirect401: false });
    for (const is of list.issuers) {
      const a = document.createElement('a');
      a.className = 'button primary';
      a.href = '/api/v1/auth/oidc/' + encodeURIComponent(is.id) + '/start';
      a.textContent = 'Sign in with ' + is.name;
      ssoButtons.append(a);
    }
    if (list.issuers.length > 0) sso.hidden = false;
    if (list.local_passwords === 'break_glass') ssoOr.textContent = 'Password sign-in is for the clinic\'s break-glass admins only:';
  } catch {
    // No list: the password form still works.
  }
}

async function main() {
  if (passkeysSupported) {
    byId('passkey-section').hidden = false;
    passkeyFactor.hidden = false;
  }
  const q = new URLSearchParams(location.search);
  const ssoCode = q.get('sso');
  if (ssoCode === 'second_factor') askSecondFactorOnly();
  else if (ssoCode) say(error, ssoMessages[/** @type {keyof typeof ssoMessages} */ (ssoCode)] || ssoMessages.failed);
  else if (q.has('expired')) say(notice, 'Your session has ended. Sign in again to continue.');
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
  if (!secondFactorOnly) await showIssuers();
  document.body.dataset.state = 'ready';
  (secondFactorOnly ? code : email).focus();
}

main();
