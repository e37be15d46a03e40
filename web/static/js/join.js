// The patient's way into a visit: /join#invite=<one-time secret>.
//
//   link check → identity (date of birth) → device check → waiting room → /call?visit=…
//
// The link check asks only whether the link was already used on another
// device (POST /api/v1/invites/check), so that a second device is told so
// before it is asked for a date of birth.
// The secret rides in the fragment so that it never reaches a server log or
// a Referer; it is moved to sessionStorage (this tab only) and removed from
// the address bar before anything else happens. Redeeming it with the date
// of birth gives this browser a patient session bound to the visit, so a
// reload of any step comes back to where it was. The waiting room follows
// GET /api/v1/visits/:id/events and never touches media: no peer connection
// exists before the provider admits the patient. While the service cannot
// reach its database (503 service_unavailable) the waiting room says so and
// keeps trying; the patient keeps their place.

import { APIError, UNAVAILABLE, get, loadSession, onAvailability, post, reportAvailability, setCSRF } from './api.js';
import { busy, byId, h, say } from './dom.js';
import { fillSelect, levelMeter, openTrack, openMedia, playTone, saveDevices, supportChecks } from './devices.js';
import { NETCHECK_STRINGS, checkNetwork } from './netcheck.js';
import { VisitEvents } from './visit-events.js';
import { forget, formatDate, onLanguage, put, remembered, sayT, setLanguage, startI18n, t, tr } from './i18n.js';

const SECRET_KEY = 'openvisit.invite';
const CHECKED_KEY = 'openvisit.checked'; // visit ID whose device check passed
const KEEPALIVE_MS = 4 * 60_000;

const ui = {
  step: byId('step'),
  loading: byId('loading'),
  error: byId('error'),
  identity: byId('identity'),
  identityTitle: byId('identity-title'),
  form: /** @type {HTMLFormElement} */ (byId('dob-form')),
  month: /** @type {HTMLSelectElement} */ (byId('dob-month')),
  day: /** @type {HTMLInputElement} */ (byId('dob-day')),
  year: /** @type {HTMLInputElement} */ (byId('dob-year')),
  dobError: byId('dob-error'),
  dobSubmit: /** @type {HTMLButtonElement} */ (byId('dob-submit')),
  devices: byId('devices'),
  devicesTitle: byId('devices-title'),
  support: byId('support'),
  preview: /** @type {HTMLVideoElement} */ (byId('preview')),
  cameraSelect: /** @type {HTMLSelectElement} */ (byId('camera-select')),
  micSelect: /** @type {HTMLSelectElement} */ (byId('mic-select')),
  level: /** @type {HTMLMeterElement} */ (byId('mic-level')),
  micHint: byId('mic-hint'),
  tone: /** @type {HTMLButtonElement} */ (byId('tone')),
  heard: byId('heard'),
  heardYes: /** @type {HTMLButtonElement} */ (byId('heard-yes')),
  heardNo: /** @type {HTMLButtonElement} */ (byId('heard-no')),
  soundHint: byId('sound-hint'),
  devicesError: byId('devices-error'),
  devicesRetry: /** @type {HTMLButtonElement} */ (byId('devices-retry')),
  devicesOk: /** @type {HTMLButtonElement} */ (byId('devices-ok')),
  waiting: byId('waiting'),
  waitingTitle: byId('waiting-title'),
  waitingText: byId('waiting-text'),
  waitingWhen: byId('waiting-when'),
  waitingDevices: /** @type {HTMLButtonElement} */ (byId('waiting-devices')),
  done: byId('done'),
  doneTitle: byId('done-title'),
  doneText: byId('done-text'),
  doneRetry: /** @type {HTMLButtonElement} */ (byId('done-retry')),
};

/**
 * Hooks for tests; holds no secrets. `pc` stays 0 here: the waiting room
 * never creates a peer connection.
 */
const openvisit = {
  /** @type {string} */ visit: '',
  /** @type {any} the last state event */ visitState: null,
  /** @type {string} the last refusal code */ lastError: '',
  /** @type {boolean} the service said it is briefly unavailable */ unavailable: false,
  /** @type {null} there is no media client on this page */ client: null,
};
/** @type {any} */ (window).openvisit = openvisit;

/** @typedef {'identity'|'devices'|'waiting'|'done'} Step */
const STEP_NUMBER = { identity: 1, devices: 2, waiting: 3, done: 0 };

/**
 * Shows one step, moves the focus to its heading (so a screen reader
 * announces it) and sets body[data-state] (tests and CSS read it).
 * @param {Step} step @param {string} [state] body state, default the step
 */
function show(step, state) {
  ui.loading.hidden = true;
  for (const s of /** @type {Step[]} */ (['identity', 'devices', 'waiting', 'done'])) ui[s].hidden = s !== step;
  if (STEP_NUMBER[step]) tr(ui.step, 'join.step', { n: STEP_NUMBER[step] });
  else tr(ui.step, '');
  document.body.dataset.state = state || step;
  const title = /** @type {HTMLElement|null} */ (ui[step].querySelector('h1'));
  if (title) title.focus();
}

/**
 * A final page: the visit ended, or the link cannot be used.
 * @param {string} title catalogue key @param {string} text catalogue key, or a text already translated
 * @param {{state?: string, retry?: boolean, forget?: boolean}} [o]
 */
function finish(title, text, o = {}) {
  stopWaiting();
  stopDevices();
  if (o.forget !== false) {
    sessionStorage.removeItem(SECRET_KEY);
    sessionStorage.removeItem(CHECKED_KEY);
  }
  put(ui.doneTitle, title);
  put(ui.doneText, text);
  ui.doneRetry.hidden = !o.retry;
  show('done', o.state || 'ended');
}

// ---- the invite ------------------------------------------------------------

/**
 * Whether this link is an interpreter's, who is not asked the patient's
 * date of birth (the link says so; the server asks nothing of them either).
 */
let noDOB = false;

/** Reads the secret from the fragment (or this tab's storage) and clears the address bar. */
function takeSecret() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get('invite') || '';
  if (fromHash) noDOB = params.get('role') === 'interpreter';
  else noDOB = sessionStorage.getItem(SECRET_KEY + '.nodob') === '1';
  if (location.hash) history.replaceState(null, '', location.pathname);
  if (fromHash) {
    forget(); // a new link: its own language, not the last visit's
    try {
      sessionStorage.setItem(SECRET_KEY, fromHash);
      sessionStorage.setItem(SECRET_KEY + '.nodob', noDOB ? '1' : '0');
    } catch {
      // storage refused: a reload will need the link again
    }
    return fromHash;
  }
  return sessionStorage.getItem(SECRET_KEY) || '';
}

/** Refusals the patient cannot fix here, with a title each (catalogue keys). */
const REFUSED = /** @type {Record<string, string>} */ ({
  too_early: 'join.refused.too_early',
  invite_expired: 'join.refused.invite_expired',
  invite_revoked: 'join.refused.invite_revoked',
  invite_used: 'join.refused.invite_used',
  invite_locked: 'join.refused.invite_locked',
  invite_invalid: 'join.refused.invite_invalid',
  visit_ended: 'join.refused.visit_ended',
  no_patient: 'join.refused.no_patient',
});

/** Server refusals the catalogue words itself (the server's message is English). */
const ERROR_TEXT = /** @type {Record<string, string>} */ ({
  invite_invalid: 'error.invite_invalid',
  invite_revoked: 'error.invite_revoked',
  invite_used: 'error.invite_used',
  invite_locked: 'error.invite_locked',
  visit_ended: 'error.visit_ended',
  invite_expired: 'error.invite_expired',
  no_patient: 'error.no_patient',
  wrong_date_of_birth: 'error.wrong_date_of_birth',
  rate_limited: 'error.rate_limited',
  invalid_request: 'error.invalid_request',
  network: 'common.network',
  service_unavailable: 'common.unavailable',
});

/** An API error in the page's language. @param {APIError} e */
function errorText(e) {
  if (e.code === 'too_early') {
    const from = e.details && e.details.usable_from;
    const time = formatDate(from, { weekday: 'long', hour: 'numeric', minute: '2-digit' });
    return time ? t('error.too_early', { time }) : e.message;
  }
  if (ERROR_TEXT[e.code]) return t(ERROR_TEXT[e.code]);
  return e.status >= 500 ? t('common.failed') : e.message;
}

/** The date of birth typed, as YYYY-MM-DD, or '' with the field to fix. */
function dateOfBirth() {
  const m = ui.month.value;
  const d = ui.day.value.trim();
  const y = ui.year.value.trim();
  if (!m) return { value: '', field: ui.month, message: 'join.dob.need_month' };
  if (!/^\d{1,2}$/.test(d) || +d < 1 || +d > 31) return { value: '', field: ui.day, message: 'join.dob.need_day' };
  if (!/^\d{4}$/.test(y)) return { value: '', field: ui.year, message: 'join.dob.need_year' };
  return { value: `${y}-${m}-${d.padStart(2, '0')}`, field: null, message: '' };
}

function clearInvalid() {
  for (const f of [ui.month, ui.day, ui.year]) f.removeAttribute('aria-invalid');
  sayT(ui.dobError, '');
}

/**
 * Asks the server whether the link was already used on another device,
 * before asking for the date of birth, and in which language the provider
 * sent it. Any failure here falls through to the date of birth (redeem then
 * says why).
 * @param {string} secret @returns {Promise<{used: boolean, lang: string}>}
 */
async function checkLink(secret) {
  try {
    /** @type {{used: boolean, lang?: string}} */
    const r = await post('/api/v1/invites/check', { invite: secret }, { redirect401: false });
    return { used: r.used === true, lang: r.lang || '' };
  } catch {
    return { used: false, lang: '' };
  }
}

/** @param {string} secret */
async function identity(secret) {
  const link = await checkLink(secret);
  // The provider's choice, unless the patient already picked one here.
  if (link.lang && !remembered()) await setLanguage(link.lang, { remember: true });
  if (link.used) {
    openvisit.lastError = 'invite_used';
    finish(REFUSED.invite_used, 'join.used_elsewhere', { state: 'refused' });
    return;
  }
  if (noDOB) {
    await redeemWith(secret, '');
    return;
  }
  show('identity');
  ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearInvalid();
    const dob = dateOfBirth();
    if (!dob.value) {
      sayT(ui.dobError, dob.message);
      dob.field?.setAttribute('aria-invalid', 'true');
      dob.field?.focus();
      return;
    }
    busy(ui.dobSubmit, () => redeemWith(secret, dob.value));
  });
}

/**
 * Redeems the invite (with the date of birth typed, or none for an
 * interpreter) and goes on to the device check, or says why not.
 * @param {string} secret @param {string} dob
 */
async function redeemWith(secret, dob) {
  try {
    /** @type {{visit_id: string, participant_id: string}} */
    const r = await post('/api/v1/invites/redeem', { invite: secret, date_of_birth: dob }, { redirect401: false });
    await startSession(r.visit_id);
    devices();
  } catch (err) {
    const e = err instanceof APIError ? err : new APIError('network', t('common.failed'), 0);
    openvisit.lastError = e.code;
    const again = e.code === 'network' || e.status >= 500 || e.code === 'invalid_request' || e.code === 'rate_limited';
    if (!noDOB && (again || e.code === 'wrong_date_of_birth')) {
      say(ui.dobError, e.code === 'wrong_date_of_birth'
        ? `${errorText(e)} ${t('join.dob.locks')}`
        : errorText(e));
      ui.month.focus();
      return;
    }
    const more = e.code === 'visit_ended' ? ' ' + t('join.refused.visit_ended_more')
      : e.code === 'too_early' ? ' ' + t('join.refused.too_early_more') : '';
    const retry = e.code === 'too_early' || again;
    finish(REFUSED[e.code] || 'join.refused.other', errorText(e) + more, { state: 'refused', retry, forget: !retry });
  }
}

/** Loads the patient session (its CSRF token) for visit. @param {string} visit */
async function startSession(visit) {
  const view = await loadSession({ redirect401: false });
  openvisit.visit = view.visit_id || visit;
}

// ---- device check ------------------------------------------------------------

/** @type {MediaStream|null} */
let preview = null;
/** @type {(() => void)|null} */
let stopMeter = null;
let heardLevel = 0;

function stopDevices() {
  if (stopMeter) stopMeter();
  stopMeter = null;
  if (preview) for (const t of preview.getTracks()) t.stop();
  preview = null;
  ui.preview.srcObject = null;
}

/** @param {string} id @param {boolean} ok @param {string} key the text's catalogue key */
function check(id, ok, key) {
  let li = ui.support.querySelector(`[data-check="${id}"]`);
  if (!li) {
    li = h('li', { dataset: { check: id } });
    ui.support.append(li);
  }
  li.className = ok ? 'ok' : 'bad';
  li.replaceChildren(ok ? '✓ ' : '✗ ', tr(h('span'), key));
}

function devices() {
  stopWaiting();
  show('devices');
  ui.devicesOk.disabled = true;
  const checks = supportChecks();
  for (const c of checks) check(c.id, c.ok, c.key);
  if (checks.some((c) => !c.ok)) {
    sayT(ui.devicesError, 'join.devices.unsupported');
    return;
  }
  openDevices();
  networkCheck();
}

/** Runs the network check once per device step; it advises and never blocks. */
async function networkCheck() {
  const box = byId('network');
  if (box.dataset.state !== 'idle' || !openvisit.visit) return;
  box.dataset.state = 'running';
  const list = byId('network-checks');
  const advice = byId('network-advice');
  advice.textContent = NETCHECK_STRINGS.checking;
  try {
    const r = await checkNetwork(openvisit.visit);
    const item = (/** @type {boolean} */ ok, /** @type {string} */ text, /** @type {string} */ id) =>
      h('li', { className: ok ? 'ok' : 'bad', dataset: { check: id } }, (ok ? '✓ ' : '✗ ') + text);
    list.replaceChildren(
      item(r.rttMs <= 400, NETCHECK_STRINGS.rtt(r.rttMs), 'rtt'),
      item(r.mbps >= 1.5, NETCHECK_STRINGS.speed(r.mbps), 'speed'),
      item(r.relay !== 'failed', r.relay === 'ok' ? NETCHECK_STRINGS.relayOk
        : r.relay === 'failed' ? NETCHECK_STRINGS.relayFailed : NETCHECK_STRINGS.relayNone, 'relay'));
    advice.textContent = r.advice.join(' ');
    box.dataset.relay = r.relay;
    box.dataset.state = 'done';
  } catch {
    advice.textContent = NETCHECK_STRINGS.failed;
    box.dataset.state = 'failed';
  }
}

/**
 * Opens the camera and microphone (or switches one), shows the preview and
 * starts the level meter.
 * @param {{kind: 'audio'|'video', deviceId: string}} [change]
 */
async function openDevices(change) {
  sayT(ui.devicesError, '');
  ui.devicesRetry.hidden = true;
  try {
    if (change && preview) {
      const track = await openTrack(change.kind, change.deviceId);
      for (const t of preview.getTracks().filter((t) => t.kind === change.kind)) {
        preview.removeTrack(t);
        t.stop();
      }
      preview.addTrack(track);
      saveDevices({ [change.kind]: change.deviceId });
    } else {
      stopDevices();
      preview = await openMedia();
    }
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    check('access', false, 'join.devices.blocked');
    sayT(ui.devicesError, name === 'NotAllowedError' ? 'join.devices.refused' : 'join.devices.none');
    ui.devicesRetry.hidden = false;
    return;
  }
  check('access', true, 'join.devices.allowed');
  ui.preview.srcObject = preview;
  ui.preview.play().catch(() => {});
  const mic = preview.getAudioTracks()[0] || null;
  const cam = preview.getVideoTracks()[0] || null;
  await fillSelect(ui.cameraSelect, 'videoinput', cam);
  await fillSelect(ui.micSelect, 'audioinput', mic);
  if (stopMeter) stopMeter();
  stopMeter = null;
  heardLevel = 0;
  sayT(ui.micHint, 'join.devices.listening');
  if (mic) {
    const started = Date.now();
    stopMeter = levelMeter(mic, (level) => {
      ui.level.value = level;
      heardLevel = Math.max(heardLevel, level);
      if (heardLevel > 0.02) sayT(ui.micHint, 'join.devices.mic_works');
      else if (Date.now() - started > 5000) sayT(ui.micHint, 'join.devices.mic_silent');
    });
  }
  ui.devicesOk.disabled = false;
}

ui.cameraSelect.addEventListener('change', () => openDevices({ kind: 'video', deviceId: ui.cameraSelect.value }));
ui.micSelect.addEventListener('change', () => openDevices({ kind: 'audio', deviceId: ui.micSelect.value }));
ui.devicesRetry.addEventListener('click', () => openDevices());

ui.tone.addEventListener('click', () => busy(ui.tone, async () => {
  ui.soundHint.hidden = true;
  try {
    await playTone();
  } catch {
    sayT(ui.soundHint, 'join.devices.no_tone');
    return;
  }
  ui.heard.hidden = false;
  ui.heardYes.focus();
}));
ui.heardYes.addEventListener('click', () => {
  ui.heard.hidden = true;
  sayT(ui.soundHint, 'join.devices.sound_works');
  ui.devicesOk.focus();
});
ui.heardNo.addEventListener('click', () => {
  ui.heard.hidden = true;
  sayT(ui.soundHint, 'join.devices.sound_help');
  ui.tone.focus();
});

ui.devicesOk.addEventListener('click', () => {
  const mic = preview?.getAudioTracks()[0];
  const cam = preview?.getVideoTracks()[0];
  saveDevices({ audio: mic?.getSettings().deviceId || '', video: cam?.getSettings().deviceId || '' });
  stopDevices();
  try {
    sessionStorage.setItem(CHECKED_KEY, openvisit.visit);
  } catch {
    // a reload repeats the check
  }
  waiting();
});

// ---- waiting room ------------------------------------------------------------

/** @type {VisitEvents|null} */
let events = null;
/** @type {ReturnType<typeof setInterval>|undefined} */
let keepalive;
let leaving = false;
/** @type {(() => void)|null} */
let stopAvailability = null;

function stopWaiting() {
  if (events) events.close();
  events = null;
  clearInterval(keepalive);
  keepalive = undefined;
  if (stopAvailability) stopAvailability();
  stopAvailability = null;
}

/**
 * The waiting room's line about the service: briefly unavailable (the page
 * keeps trying and the patient keeps their place), or the usual text.
 * @param {boolean} available
 */
function serviceState(available) {
  openvisit.unavailable = !available;
  if (available) delete document.body.dataset.service;
  else document.body.dataset.service = 'unavailable';
  if (available) sayT(ui.waitingText, 'join.waiting.text');
  else sayT(ui.waitingText, 'common.unavailable');
}

function waiting() {
  show('waiting');
  stopAvailability = onAvailability(serviceState);
  const visit = openvisit.visit;
  // Waiting is activity the server cannot see (the event stream is passive):
  // keep the patient session alive while the page is open.
  keepalive = setInterval(() => {
    post('/api/v1/auth/keepalive', {}, { redirect401: false }).catch((err) => {
      if (err instanceof APIError && err.status === 401) sessionGone();
    });
  }, KEEPALIVE_MS);
  connectEvents(visit);
}

/** @param {string} visit */
function connectEvents(visit) {
  const stream = new VisitEvents(visit, {
    // The stream opens only when the service reached its database.
    open: () => reportAvailability(true),
    state: onState,
    // The browser gave up (the session or visit is gone): ask why.
    gone: () => {
      if (events === stream && !leaving) whyClosed(visit);
    },
  });
  events = stream;
}

/** The stream could not continue: read the state once to say why. @param {string} visit */
async function whyClosed(visit) {
  try {
    onState(await get(`/api/v1/visits/${encodeURIComponent(visit)}/state`, { redirect401: false }));
    if (events && events.closed) connectEvents(visit);
  } catch (err) {
    if (err instanceof APIError && (err.status === 401 || err.status === 404)) sessionGone();
    else setTimeout(() => { if (!leaving) connectEvents(visit); }, err instanceof APIError && err.retryAfter ? err.retryAfter * 1000 : 3000);
  }
}

function sessionGone() {
  finish('join.end.session_gone', 'join.end.session_gone_text', { state: 'ended' });
}

/**
 * The scheduled time line, in the language in use and the patient's time
 * zone (Intl, the browser's).
 */
function showWhen() {
  const iso = openvisit.visitState && openvisit.visitState.scheduled_start;
  const day = formatDate(iso, { weekday: 'long' });
  const time = formatDate(iso, { hour: 'numeric', minute: '2-digit' });
  if (day && time) tr(ui.waitingWhen, 'join.waiting.when', { day, time });
  else tr(ui.waitingWhen, '');
}
onLanguage(showWhen);

/** @param {import('./visit-events.js').VisitState} st */
function onState(st) {
  openvisit.visitState = st;
  showWhen();
  const me = st.me ? st.me.state : '';
  if (st.status === 'cancelled') {
    finish('join.end.cancelled', 'join.end.cancelled_text');
  } else if (st.status === 'completed' || st.status === 'no_show') {
    finish('join.done.title', 'join.end.over_text');
  } else if (me === 'admitted') {
    leaving = true;
    stopWaiting();
    document.body.dataset.state = 'admitted';
    sayT(ui.waitingText, 'join.waiting.admitted');
    location.replace('/call?visit=' + encodeURIComponent(openvisit.visit));
  } else if (me === 'turned_away') {
    finish('join.end.turned_away', 'join.end.turned_away_text');
  } else if (me === 'removed') {
    finish('join.end.removed', 'join.end.removed_text');
  } else if (me === 'left') {
    finish('join.done.title', 'join.end.over_text');
  }
}

ui.waitingDevices.addEventListener('click', () => devices());
ui.doneRetry.addEventListener('click', () => location.reload());

// ---- start ------------------------------------------------------------------

async function main() {
  const secret = takeSecret();
  await startI18n();
  // Back in a tab that already redeemed the link (a reload): resume.
  try {
    /** @type {import('./api.js').SessionView} */
    const view = await get('/api/v1/auth/session', { redirect401: false });
    if (view.kind === 'patient' && view.visit_id) {
      setCSRF(view.csrf_token);
      if (view.lang && !remembered()) await setLanguage(view.lang, { remember: true });
      openvisit.visit = view.visit_id;
      if (sessionStorage.getItem(CHECKED_KEY) === view.visit_id) waiting();
      else devices();
      return;
    }
  } catch (err) {
    if (err instanceof APIError && err.code === UNAVAILABLE) {
      finish('join.end.unavailable', 'join.end.unavailable_text', { state: 'unavailable', retry: true, forget: false });
      return;
    }
    // no session: the link and the date of birth it is
  }
  if (!secret) {
    finish('join.end.no_link', 'join.end.no_link_text', { state: 'refused' });
    return;
  }
  await identity(secret);
}

main();
