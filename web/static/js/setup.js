// The account setup page: /setup#token=<one-time secret>. The secret lives
// in the fragment so that it never reaches a server log or a Referer; it is
// removed from the address bar before anything else happens. The page sets
// a password (for an invite), enrols an authenticator (QR code or key), and
// shows the recovery codes once.

import { APIError, describe, post } from './api.js';
import { busy, byId, copy, h, say } from './dom.js';

/**
 * @typedef {object} Begun
 * @property {string} email
 * @property {'invite'|'reset_mfa'} purpose
 * @property {boolean} needs_password
 * @property {string} otpauth_uri
 * @property {string} secret
 * @property {string} qr_png  data: URL
 */

const ui = {
  loading: byId('loading'),
  error: byId('error'),
  enrol: byId('enrol'),
  intro: byId('intro'),
  form: byId('setup'),
  passwordStep: /** @type {HTMLFieldSetElement} */ (byId('password-step')),
  password: /** @type {HTMLInputElement} */ (byId('password')),
  password2: /** @type {HTMLInputElement} */ (byId('password2')),
  qr: /** @type {HTMLImageElement} */ (byId('qr')),
  secret: byId('secret'),
  otpauth: /** @type {HTMLAnchorElement} */ (byId('otpauth')),
  code: /** @type {HTMLInputElement} */ (byId('code')),
  formError: byId('form-error'),
  finish: /** @type {HTMLButtonElement} */ (byId('finish')),
  done: byId('done'),
  doneTitle: byId('done-title'),
  codes: byId('codes'),
  copyCodes: /** @type {HTMLButtonElement} */ (byId('copy-codes')),
  copyStatus: byId('copy-status'),
  saved: /** @type {HTMLInputElement} */ (byId('saved')),
  cont: /** @type {HTMLButtonElement} */ (byId('continue')),
};

/** Reads and removes the setup secret from the fragment. */
function takeToken() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  if (location.hash) history.replaceState(null, '', location.pathname);
  return token;
}

/** @param {string} message */
function fail(message) {
  ui.loading.hidden = true;
  ui.enrol.hidden = true;
  document.body.dataset.state = 'failed';
  say(ui.error, message);
}

/** Groups a base32 key in fours for reading aloud or typing. @param {string} s */
function grouped(s) {
  return (s.match(/.{1,4}/g) || []).join(' ');
}

/** @param {HTMLInputElement} input @param {string} message */
function invalid(input, message) {
  say(ui.formError, message);
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-errormessage', 'form-error');
  input.focus();
}

function clearInvalid() {
  say(ui.formError, '');
  for (const i of [ui.password, ui.password2, ui.code]) {
    i.removeAttribute('aria-invalid');
    i.removeAttribute('aria-errormessage');
  }
}

/** @param {string[]} codes */
function showCodes(codes) {
  ui.codes.replaceChildren(...codes.map((c) => h('li', {}, h('code', {}, c))));
  ui.enrol.hidden = true;
  ui.done.hidden = false;
  document.body.dataset.state = 'done';
  ui.doneTitle.focus();
  ui.copyCodes.addEventListener('click', () => copy(codes.join('\n'), ui.copyStatus));
  ui.saved.addEventListener('change', () => { ui.cont.disabled = !ui.saved.checked; });
  ui.cont.addEventListener('click', () => {
    ui.codes.replaceChildren();
    location.replace('/signin');
  });
}

async function main() {
  const token = takeToken();
  if (!token) {
    fail('This page needs the setup link your admin sent you. Open that link again; if it has expired, ask for a new one.');
    return;
  }
  /** @type {Begun} */
  let b;
  try {
    b = await post('/api/v1/setup/begin', { token }, { redirect401: false });
  } catch (err) {
    fail(describe(err));
    return;
  }
  ui.loading.hidden = true;
  ui.intro.textContent = b.purpose === 'reset_mfa'
    ? `Your sign-in for ${b.email} was reset by an admin. Add OpenVisit to your authenticator app again.`
    : `Welcome. You are setting up the account ${b.email}.`;
  // For password managers: the account the new password belongs to.
  /** @type {HTMLInputElement} */ (byId('username')).value = b.email;
  ui.passwordStep.hidden = !b.needs_password;
  ui.passwordStep.disabled = !b.needs_password;
  ui.qr.src = b.qr_png;
  ui.secret.textContent = grouped(b.secret);
  ui.secret.dataset.secret = b.secret;
  ui.otpauth.href = b.otpauth_uri;
  ui.enrol.hidden = false;
  document.body.dataset.state = 'ready';
  (b.needs_password ? ui.password : ui.code).focus();

  ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearInvalid();
    if (b.needs_password && ui.password.value !== ui.password2.value) {
      invalid(ui.password2, 'The two passwords are not the same.');
      return;
    }
    busy(ui.finish, async () => {
      try {
        /** @type {{email: string, recovery_codes: string[]}} */
        const r = await post('/api/v1/setup/complete', {
          token,
          password: b.needs_password ? ui.password.value : '',
          code: ui.code.value.replace(/\s+/g, ''),
        }, { redirect401: false });
        ui.password.value = ui.password2.value = ui.code.value = '';
        ui.qr.removeAttribute('src');
        ui.secret.textContent = '';
        delete ui.secret.dataset.secret;
        ui.otpauth.href = '/setup';
        showCodes(r.recovery_codes);
      } catch (err) {
        const code = err instanceof APIError ? err.code : '';
        if (code === 'weak_password') invalid(ui.password, describe(err));
        else if (code === 'wrong_code') {
          ui.code.value = '';
          invalid(ui.code, describe(err));
        } else if (code === 'link_invalid' || code === 'enrolment_not_started') fail(describe(err));
        else say(ui.formError, describe(err));
      }
    });
  });
}

main();
