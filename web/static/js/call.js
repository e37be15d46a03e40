// The call page, reached three ways:
//   /call#code=<one-time code>  the demo's links. The code lives in the
//     fragment so that it never reaches a server log or a Referer header; it
//     is removed from the address bar before anything else happens. A demo
//     code cannot be redeemed twice, so a demo call does not reconnect.
//   /call?visit=<visit ID>  with a session: a signed-in provider, or a
//     patient admitted from the waiting room (/join). The page asks the API
//     for a join grant with the session (a visit ID is an opaque ID, fine in
//     a URL) and asks again whenever the client reconnects, so a reload or a
//     dropped connection is back in the call without a new admission.
//
// The provider also gets the waiting-room panel (admit, turn away, remove,
// end the visit for everyone) and screen sharing; everyone gets device
// switching and a network-quality indicator per participant.

import { APIError, loadSession, post } from './api.js';
import { mediaStateTag, showIceHelp } from './call-ice.js';
import { startRecordingUI } from './call-recording.js';
import { VisitClient } from './client.js';
import { fillSelect, openMedia, openTrack, saveDevices } from './devices.js';
import { confirmAction, h, say } from './dom.js';
import { startIdleLogoff } from './session.js';

/**
 * @typedef {object} Redeemed
 * @property {string} visit_id
 * @property {string} participant_id
 * @property {string} role
 * @property {string} token
 * @property {string} ws_url
 * @property {RTCIceServer[]} [ice_servers]
 * @property {import('./call-ice.js').Help} [help] the clinic's help line
 */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const ui = {
  state: $('state'),
  tiles: $('tiles'),
  local: /** @type {HTMLVideoElement} */ ($('local')),
  selfTile: $('self-tile'),
  selfQuality: $('self-quality'),
  waiting: $('waiting'),
  mute: /** @type {HTMLButtonElement} */ ($('mute')),
  camera: /** @type {HTMLButtonElement} */ ($('camera')),
  share: /** @type {HTMLButtonElement} */ ($('share')),
  settings: /** @type {HTMLButtonElement} */ ($('settings')),
  devicePanel: $('device-panel'),
  camSelect: /** @type {HTMLSelectElement} */ ($('cam-select')),
  micSelect: /** @type {HTMLSelectElement} */ ($('mic-select')),
  deviceStatus: $('device-status'),
  leave: /** @type {HTMLButtonElement} */ ($('leave')),
  layout: $('layout'),
  call: $('call'),
  room: $('room'),
  roomPatient: $('room-patient'),
  roomEmpty: $('room-empty'),
  roomList: $('room-list'),
  roomStatus: $('room-status'),
  endVisit: /** @type {HTMLButtonElement} */ ($('end-visit')),
  ended: $('ended'),
  endedTitle: $('ended-title'),
  endedReason: $('ended-reason'),
  endedHome: /** @type {HTMLAnchorElement} */ ($('ended-home')),
  error: $('error'),
};

const STATE_TEXT = {
  starting: 'Starting…',
  redeeming: 'Checking your visit link…',
  media: 'Waiting for camera and microphone…',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Connection interrupted, reconnecting…',
  failed: 'Connection failed',
  closed: 'Call ended',
};

/** Hooks for tests and for pages built on this one; holds no secrets. */
const openvisit = {
  /** @type {VisitClient|null} */ client: null,
  /** @type {string|null} participant ID of this page */ self: null,
  /** @type {MediaStream|null} what the page shows as "you" */ localStream: null,
  /** @type {{code: number, reason: string}|null} how the media socket closed */ closed: null,
  /** @type {string} the last error code the server or client reported */ lastError: '',
  /** @type {'demo'|'provider'|'patient'|''} */ mode: '',
  /** @type {string} */ visit: '',
  /** @type {any} the last visit state event (waiting room) */ visitState: null,
  /** @type {Record<string, {grade: string, loss: number, jitter: number, rtt: number, bitrate: number}>} by participant ID, "self" for this page */
  quality: {},
  /** @type {import('./call-recording.js').RecordingState|null} the recording state the page shows (signed-in visits) */
  recording: null,
  /** @type {import('./client.js').IceFailedDetail|null} the last failed connection attempt and what it tried */
  ice: null,
  /** @type {import('./call-ice.js').Help|null} the clinic's help line, from the join grant */
  help: null,
};
/** @type {any} */ (window).openvisit = openvisit;

/**
 * @param {keyof typeof STATE_TEXT} s  also set as document.body.dataset.state (tests and CSS read it)
 * @param {string} [text] replaces the default wording
 */
function showState(s, text) {
  document.body.dataset.state = s;
  ui.state.textContent = text || STATE_TEXT[s] || s;
}

/** @param {string} message */
function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

/** @param {string} title @param {string} reason */
function showEnded(title, reason) {
  ui.layout.hidden = true;
  ui.endedTitle.textContent = title;
  ui.endedReason.textContent = reason;
  ui.ended.hidden = false;
  ui.endedTitle.focus();
  stopLocal();
  stopWatching();
  clearInterval(qualityTimer);
}

/** @param {string} message */
function cannotJoin(message) {
  showState('failed', 'Could not join');
  showError(message);
  ui.layout.hidden = true;
}

function stopLocal() {
  const all = new Set([...(openvisit.localStream ? openvisit.localStream.getTracks() : []), ...(camera ? [camera] : []), ...(screen ? [screen] : [])]);
  for (const t of all) t.stop();
  ui.local.srcObject = null;
}

/** Reads and removes the one-time code from the fragment. @returns {string} */
function takeCode() {
  const params = new URLSearchParams(location.hash.slice(1));
  const code = params.get('code') || '';
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return code;
}

/** @param {string} code @returns {Promise<Redeemed>} */
async function redeem(code) {
  let resp;
  try {
    resp = await fetch('/api/v1/demo/redeem', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ code }),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new Error('The server could not be reached. Check your connection and try again.');
  }
  /** @type {any} */
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // handled below
  }
  if (!resp.ok) {
    const msg = body && body.error && body.error.message;
    throw new Error(msg || `The visit link could not be used (HTTP ${resp.status}).`);
  }
  if (!body || !body.token || !body.ws_url || !body.visit_id) {
    throw new Error('The server sent an unexpected answer.');
  }
  return body;
}

const VISIT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A fresh join grant for the session's participant (a new single-use token
 * each time). Errors the server means for good (ended, not admitted, no
 * session, no access) are marked fatal for the client's reconnection;
 * network trouble and 5xx are not.
 * @param {string} visit
 * @returns {Promise<Redeemed>}
 */
async function fetchGrant(visit) {
  try {
    /** @type {Redeemed} */
    const body = await post(`/api/v1/visits/${encodeURIComponent(visit)}/join`, {}, { redirect401: false });
    if (!body || !body.token || !body.ws_url || !body.visit_id) throw new Error('The server sent an unexpected answer.');
    return body;
  } catch (err) {
    if (err instanceof APIError && err.status >= 400 && err.status < 500 && err.status !== 429) {
      throw Object.assign(err, { fatal: true, ended: err.code === 'visit_closed' });
    }
    throw err;
  }
}

/**
 * Diagnostics switch: with sessionStorage 'openvisit.iceTransportPolicy' set
 * to 'relay' (from the developer console, or by a test before the page
 * loads), the call uses relayed (TURN) candidates only, to check that the
 * relay alone carries a call. Nothing in the product sets it, and it lasts
 * for the tab only.
 * @returns {boolean}
 */
function relayOnly() {
  try {
    return sessionStorage.getItem('openvisit.iceTransportPolicy') === 'relay';
  } catch {
    return false; // storage blocked
  }
}

/**
 * Plays a media element, retrying on the next user gesture when autoplay is
 * refused.
 * @param {HTMLMediaElement} el
 * @param {HTMLElement} [tile] where to show a "turn on sound" button
 */
function play(el, tile) {
  el.play().catch((err) => {
    if (err && err.name === 'AbortError') return; // replaced by a newer load
    if (!tile || tile.querySelector('.unblock')) return;
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'unblock';
    b.textContent = el instanceof HTMLAudioElement ? 'Turn on sound' : 'Play video';
    b.addEventListener('click', () => {
      b.remove();
      for (const m of tile.querySelectorAll('video, audio')) play(/** @type {HTMLMediaElement} */ (m));
    });
    tile.append(b);
  });
}

// ---- tiles ------------------------------------------------------------------

/** @type {Map<string, {tile: HTMLElement, video: HTMLVideoElement, audio: HTMLAudioElement, quality: HTMLElement, caption: HTMLElement}>} */
const tiles = new Map();

/** @param {string} id @param {string} [role] */
function tileFor(id, role) {
  let t = tiles.get(id);
  if (t) return t;
  const tile = document.createElement('figure');
  tile.className = 'tile';
  tile.dataset.participant = id;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // sound plays through the audio element below
  const audio = document.createElement('audio');
  audio.autoplay = true;
  const quality = h('p', { className: 'quality', hidden: true });
  const cap = document.createElement('figcaption');
  cap.textContent = roleLabel(role);
  tile.append(video, audio, quality, cap);
  ui.tiles.append(tile);
  t = { tile, video, audio, quality, caption: cap };
  tiles.set(id, t);
  updateWaiting();
  return t;
}

/** @param {string|undefined} role */
function roleLabel(role) {
  if (role === 'provider') return 'Provider';
  if (role === 'patient') return openvisit.visitState && openvisit.visitState.patient_name ? openvisit.visitState.patient_name : 'Patient';
  return 'Participant';
}

/** @param {string} id */
function removeTile(id) {
  const t = tiles.get(id);
  if (!t) return;
  t.video.srcObject = null;
  t.audio.srcObject = null;
  t.tile.remove();
  tiles.delete(id);
  delete openvisit.quality[id];
  updateWaiting();
}

let someoneLeft = false;

function updateWaiting() {
  ui.waiting.hidden = tiles.size > 0;
  ui.waiting.textContent = someoneLeft
    ? 'The other participant left the visit.'
    : openvisit.mode === 'provider' ? 'Nobody else is in the call yet. Admit your patient from the waiting room.'
      : 'Waiting for the other participant to join…';
}

/** @param {HTMLButtonElement} b @param {boolean} on */
function setPressed(b, on) {
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
}

// ---- network quality ------------------------------------------------------------

/** @type {ReturnType<typeof setInterval>|undefined} */
let qualityTimer;
/** @type {Map<string, {lost: number, received: number}>} previous counters by inbound-rtp id */
const lastCounters = new Map();
/** @type {Map<string, string>} remote track ID → participant ID */
const trackOwner = new Map();

/**
 * Grades a connection from packet loss (0..1), jitter and round-trip time
 * (seconds) and the available outgoing bitrate (bit/s, 0 = unknown).
 * @param {{loss: number, jitter: number, rtt: number, bitrate: number}} m
 */
function grade(m) {
  if (m.loss > 0.08 || m.jitter > 0.1 || m.rtt > 0.5 || (m.bitrate > 0 && m.bitrate < 150_000)) return 'poor';
  if (m.loss > 0.02 || m.jitter > 0.04 || m.rtt > 0.25 || (m.bitrate > 0 && m.bitrate < 500_000)) return 'fair';
  return 'good';
}

/** @param {HTMLElement} el @param {string} who @param {{grade: string, loss: number, jitter: number, rtt: number, bitrate: number}} q */
function showQuality(el, who, q) {
  const words = { good: 'good', fair: 'fair', poor: 'poor' };
  el.hidden = false;
  el.dataset.quality = q.grade;
  el.textContent = `${who}: ${words[/** @type {'good'|'fair'|'poor'} */ (q.grade)]}`;
  const parts = [`packet loss ${(q.loss * 100).toFixed(1)} %`, `jitter ${Math.round(q.jitter * 1000)} ms`];
  if (q.rtt) parts.push(`round trip ${Math.round(q.rtt * 1000)} ms`);
  if (q.bitrate) parts.push(`upload ${Math.round(q.bitrate / 1000)} kbit/s`);
  el.title = parts.join(', ');
}

async function updateQuality() {
  const c = openvisit.client;
  if (!c || !c.pc || c.state !== 'connected') {
    ui.selfQuality.hidden = true;
    for (const t of tiles.values()) t.quality.hidden = true;
    return;
  }
  /** @type {any} */
  let report;
  try {
    report = await c.getStats();
  } catch {
    return;
  }
  let rtt = 0;
  let bitrate = 0;
  let upLoss = 0;
  let upJitter = 0;
  /** @type {Map<string, {loss: number, jitter: number}>} */
  const per = new Map();
  report.forEach((/** @type {any} */ s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      rtt = s.currentRoundTripTime || rtt;
      bitrate = s.availableOutgoingBitrate || bitrate;
    } else if (s.type === 'remote-inbound-rtp') {
      upLoss = Math.max(upLoss, s.fractionLost || 0);
      upJitter = Math.max(upJitter, s.jitter || 0);
      if (!rtt && s.roundTripTime) rtt = s.roundTripTime;
    } else if (s.type === 'inbound-rtp') {
      const owner = trackOwner.get(s.trackIdentifier);
      if (!owner) return;
      const prev = lastCounters.get(s.id) || { lost: 0, received: 0 };
      const lost = Math.max(0, (s.packetsLost || 0) - prev.lost);
      const recv = Math.max(0, (s.packetsReceived || 0) - prev.received);
      lastCounters.set(s.id, { lost: s.packetsLost || 0, received: s.packetsReceived || 0 });
      const q = per.get(owner) || { loss: 0, jitter: 0 };
      q.loss = Math.max(q.loss, lost + recv > 0 ? lost / (lost + recv) : 0);
      q.jitter = Math.max(q.jitter, s.jitter || 0);
      per.set(owner, q);
    }
  });
  const self = { loss: upLoss, jitter: upJitter, rtt, bitrate, grade: '' };
  self.grade = grade(self);
  openvisit.quality.self = self;
  showQuality(ui.selfQuality, 'Network', self);
  for (const [id, t] of tiles) {
    const m = per.get(id);
    if (!m) continue;
    // Their media reaches us through their uplink and our downlink: the
    // round trip is ours, the loss and jitter are what arrives.
    const q = { loss: m.loss, jitter: m.jitter, rtt, bitrate: 0, grade: '' };
    q.grade = grade(q);
    openvisit.quality[id] = q;
    showQuality(t.quality, 'Connection', q);
  }
}

// ---- devices and screen share ------------------------------------------------------------

/** @type {MediaStreamTrack|null} the camera, kept while the screen is shared */
let camera = null;
/** @type {MediaStreamTrack|null} */
let screen = null;

/** Replaces the page's own track of that kind with track in the preview stream. @param {MediaStreamTrack} track */
function showLocal(track) {
  const s = openvisit.localStream;
  if (!s) return;
  for (const t of s.getTracks().filter((t) => t.kind === track.kind)) s.removeTrack(t);
  s.addTrack(track);
  ui.local.srcObject = s;
  play(ui.local);
}

/** @param {'audio'|'video'} kind @param {string} deviceId */
async function switchDevice(kind, deviceId) {
  const c = openvisit.client;
  if (!c || !deviceId) return;
  say(ui.deviceStatus, kind === 'video' ? 'Switching camera…' : 'Switching microphone…');
  let track;
  try {
    track = await openTrack(kind, deviceId);
  } catch {
    say(ui.deviceStatus, 'That device could not be opened. It may be in use by another app.');
    return;
  }
  saveDevices({ [kind]: deviceId });
  if (kind === 'video' && screen) {
    // Sharing the screen: the new camera comes back when sharing stops.
    if (camera) camera.stop();
    camera = track;
    say(ui.deviceStatus, 'Camera switched; it returns when you stop sharing your screen.');
    return;
  }
  const old = c.sending(kind);
  await c.replaceTrack(track);
  showLocal(track);
  if (old && old !== track) old.stop();
  if (kind === 'video') camera = track;
  say(ui.deviceStatus, kind === 'video' ? 'Camera switched.' : 'Microphone switched.');
}

async function startShare() {
  const c = openvisit.client;
  if (!c || screen) return;
  /** @type {MediaStream} */
  let s;
  try {
    s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch {
    return; // the user chose nothing
  }
  screen = s.getVideoTracks()[0];
  if (!screen) return;
  camera = c.sending('video');
  screen.addEventListener('ended', () => stopShare());
  await c.replaceTrack(screen);
  screen.enabled = true;
  showLocal(screen);
  setPressed(ui.share, true);
  ui.share.textContent = 'Stop sharing';
  ui.selfTile.classList.add('sharing');
}

async function stopShare() {
  const c = openvisit.client;
  const s = screen;
  if (!s) return;
  screen = null;
  if (c && camera) {
    await c.replaceTrack(camera);
    showLocal(camera);
  }
  s.stop();
  setPressed(ui.share, false);
  ui.share.textContent = 'Share screen';
  ui.selfTile.classList.remove('sharing');
}

// ---- waiting room (provider) and visit state (patient) -----------------------------------------

/** @type {EventSource|null} */
let events = null;
let endedByMe = false;

function stopWatching() {
  if (events) events.close();
  events = null;
}

/** @param {string} visit */
function watchVisit(visit) {
  const es = new EventSource(`/api/v1/visits/${encodeURIComponent(visit)}/events`);
  events = es;
  es.addEventListener('state', (ev) => {
    /** @type {any} */
    let st;
    try {
      st = JSON.parse(/** @type {MessageEvent} */ (ev).data);
    } catch {
      return;
    }
    openvisit.visitState = st;
    if (openvisit.mode === 'provider') renderRoom(st);
    else patientState(st);
    if (['completed', 'cancelled', 'no_show'].includes(st.status)) stopWatching();
  });
}

/** @param {any} st */
function renderRoom(st) {
  ui.roomPatient.textContent = st.patient_name ? `Patient: ${st.patient_name}` : '';
  for (const t of tiles.values()) {
    if (t.tile.dataset.role === 'patient' && st.patient_name) t.caption.textContent = st.patient_name;
  }
  /** @type {any[]} */
  const people = (st.participants || []).filter((/** @type {any} */ p) => p.role === 'patient' && (p.state === 'waiting' || p.state === 'admitted'));
  ui.roomEmpty.hidden = people.some((p) => p.state === 'waiting');
  ui.roomEmpty.textContent = people.length ? 'Nobody else is waiting.' : 'Nobody is waiting.';
  ui.roomList.replaceChildren(...people.map((p) => {
    const name = st.patient_name || 'Patient';
    const since = p.state === 'waiting' && p.waiting_at ? `waiting since ${new Date(p.waiting_at).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' })}` : 'admitted to the call';
    // The patient's connection as the media node reports it (not their page).
    const media = p.state === 'admitted' ? mediaStateTag(p) : null;
    const li = h('li', { className: 'item', dataset: { pid: p.id, state: p.state, mediaState: p.media_state || '' } },
      h('p', { className: 'item-title' }, name, ' ', h('span', { className: 'tag' + (p.state === 'waiting' ? ' tag-warn' : ' tag-ok') }, p.state === 'waiting' ? 'Waiting' : 'Admitted'),
        media ? ' ' : '', media),
      h('p', { className: 'hint' }, since));
    const actions = h('div', { className: 'actions' });
    const act = (/** @type {string} */ action, /** @type {string} */ label, /** @type {string} */ cls) => {
      const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', className: cls, dataset: { action } }, label, h('span', { className: 'sr-only' }, ` ${name}`)));
      b.addEventListener('click', () => participantAction(p.id, action, name));
      actions.append(b);
    };
    if (p.state === 'waiting') {
      act('admit', 'Admit', 'primary');
      act('turn-away', 'Turn away', '');
    } else {
      act('remove', 'Remove', 'danger');
    }
    li.append(actions);
    return li;
  }));
}

/** @param {string} pid @param {string} action @param {string} name */
async function participantAction(pid, action, name) {
  if (action !== 'admit') {
    const yes = await confirmAction({
      title: action === 'remove' ? 'Remove the patient?' : 'Turn the patient away?',
      message: action === 'remove'
        ? `${name} leaves the call at once and cannot rejoin with this link.`
        : `${name} is told you cannot see them now, and cannot rejoin with this link.`,
      confirm: action === 'remove' ? 'Remove' : 'Turn away',
      danger: true,
    });
    if (!yes) return;
  }
  try {
    await post(`/api/v1/visits/${encodeURIComponent(openvisit.visit)}/participants/${encodeURIComponent(pid)}/${action}`, {});
    say(ui.roomStatus, action === 'admit' ? `${name} admitted.` : action === 'remove' ? `${name} removed.` : `${name} turned away.`);
  } catch (err) {
    say(ui.roomStatus, err instanceof Error ? err.message : 'That did not work.');
  }
}

/** @param {any} st */
function patientState(st) {
  if (st.me && st.me.state === 'removed' && !ui.ended.hidden) {
    ui.endedTitle.textContent = 'You were removed from the visit';
    ui.endedReason.textContent = 'Your provider removed you from this visit. Contact your clinic if you have questions.';
  }
}

ui.endVisit.addEventListener('click', async () => {
  const yes = await confirmAction({
    title: 'End the visit for everyone?',
    message: 'Everyone leaves the call and the patient\'s link stops working.',
    confirm: 'End visit',
    danger: true,
  });
  if (!yes) return;
  endedByMe = true;
  try {
    await post(`/api/v1/visits/${encodeURIComponent(openvisit.visit)}/end`, {});
  } catch (err) {
    endedByMe = false;
    say(ui.roomStatus, err instanceof Error ? err.message : 'The visit could not be ended.');
    return;
  }
  // The server closes every socket with 4010; the closed handler shows the end.
  if (!openvisit.client || openvisit.client.state === 'closed' || openvisit.client.state === 'failed') {
    showEnded('The visit has ended', 'You ended the visit for everyone.');
  }
});

// ---- the page ------------------------------------------------------------

/** Close codes of PROTOCOL.md, in words a patient (or provider) can act on. */
function closeReason(/** @type {number} */ code) {
  if (openvisit.mode === 'provider') {
    switch (code) {
      case 4001: return 'The join grant expired before it was used. Join again from your visits page.';
      case 4010: return 'Your access to this visit ended: you were signed out, your account was changed, or the visit was closed.';
    }
  }
  switch (code) {
    case 4001: return 'Your visit link has expired or was already used. Ask for a new link.';
    case 4003: return 'This link belongs to another visit.';
    case 4009: return 'You joined this visit from another window or device.';
    case 4010: return 'The visit has ended.';
    case 1000: return 'The visit has ended.';
    default: return 'The connection to the visit was lost.';
  }
}

async function main() {
  showState('starting');
  const code = takeCode();
  const visit = new URLSearchParams(location.search).get('visit') || '';
  const session = !code && !!visit;
  if (!code && !visit) {
    cannotJoin('This page needs the visit link from your invitation. Open that link again.');
    return;
  }

  showState('redeeming', session ? 'Joining the visit…' : undefined);
  /** @type {Redeemed} */
  let r;
  if (!session) {
    openvisit.mode = 'demo';
    try {
      r = await redeem(code);
    } catch (err) {
      cannotJoin(err instanceof Error ? err.message : 'The visit link could not be used.');
      return;
    }
  } else {
    if (!VISIT_ID.test(visit)) {
      cannotJoin('This is not a valid visit address. Open the visit from your visits page or your invitation.');
      return;
    }
    /** @type {import('./api.js').SessionView} */
    let view;
    try {
      view = await loadSession({ redirect401: false });
    } catch (err) {
      cannotJoin(err instanceof APIError && err.status === 401
        ? 'You are not signed in. Providers: sign in and open the visit again. Patients: open the link from your invitation again.'
        : 'The server could not be reached. Check your connection and reload the page.');
      return;
    }
    openvisit.mode = view.kind === 'patient' ? 'patient' : 'provider';
    openvisit.visit = visit;
    if (openvisit.mode === 'provider') {
      ui.endedHome.href = '/provider';
      ui.endedHome.textContent = 'Back to your visits';
      // A live call is activity the server cannot see: keep the session while in it.
      startIdleLogoff(view, { keepAliveWhen: () => !!openvisit.client && ['connected', 'reconnecting'].includes(openvisit.client.state) });
    } else {
      ui.endedHome.href = '/';
      ui.endedHome.textContent = 'OpenVisit home';
      // The patient's session idles out like any other: a call is activity.
      setInterval(() => {
        const c = openvisit.client;
        if (c && ['connected', 'reconnecting'].includes(c.state)) post('/api/v1/auth/keepalive', {}, { redirect401: false }).catch(() => {});
      }, 4 * 60_000);
    }
    try {
      r = await fetchGrant(visit);
    } catch (err) {
      const e = /** @type {any} */ (err);
      if (e.code === 'not_admitted') {
        location.replace('/join'); // back to the waiting room
        return;
      }
      if (e.code === 'visit_closed') {
        showState('closed');
        showEnded('The visit has ended', 'This visit is over.');
        return;
      }
      cannotJoin(e.status === 401 || e.status === 404
        ? 'You cannot join this visit (your session ended, or it is not yours).'
        : (err instanceof Error ? err.message : 'The visit could not be joined.'));
      return;
    }
    if (openvisit.mode === 'provider') {
      ui.room.hidden = false;
      ui.share.hidden = !(navigator.mediaDevices && 'getDisplayMedia' in navigator.mediaDevices);
    }
    watchVisit(visit);
    startRecordingUI({
      visit,
      mode: openvisit.mode === 'patient' ? 'patient' : 'provider',
      live: () => ui.ended.hidden && !!openvisit.client && ['connected', 'reconnecting'].includes(openvisit.client.state),
      onState: (st) => { openvisit.recording = st; },
    });
  }
  openvisit.self = r.participant_id;
  openvisit.help = r.help || null;
  updateWaiting();

  showState('media');
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await openMedia();
  } catch (err) {
    showState('failed', 'No camera or microphone');
    const name = err instanceof Error ? err.name : '';
    showError(name === 'NotAllowedError'
      ? 'Camera and microphone access was refused. Allow it in your browser settings and reload.'
      : 'No camera or microphone could be opened.');
    return;
  }
  openvisit.localStream = stream;
  camera = stream.getVideoTracks()[0] || null;
  ui.local.srcObject = stream;
  play(ui.local);

  const client = new VisitClient({
    url: r.ws_url,
    token: r.token,
    visit: r.visit_id,
    iceServers: r.ice_servers || [],
    iceTransportPolicy: relayOnly() ? 'relay' : 'all',
    getGrant: session ? async () => {
      const g = await fetchGrant(visit);
      openvisit.help = g.help || openvisit.help;
      return g;
    } : undefined,
  });
  openvisit.client = client;
  let left = false;
  // The server ended the call on purpose (visit ended, participant removed):
  // a clean end, not a connection failure.
  let endedByServer = false;

  client.addEventListener('state', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').StateDetail>} */ (ev).detail;
    if (endedByServer && (d.state === 'failed' || d.state === 'closed')) {
      showState('closed', openvisit.closed && openvisit.closed.code === 4010 && !endedByMe && openvisit.mode !== 'patient' ? 'Removed from the visit' : undefined);
      return;
    }
    if (d.state === 'connected') showIceHelp(undefined, null);
    // Honest words: a call that never connected is not "reconnecting".
    if (d.state === 'reconnecting' && client.iceFailures > 0 && !client.everConnected) {
      showState('reconnecting', 'Could not connect; trying again…');
    } else if (d.state === 'failed' && client.iceFailures > 0) {
      showState('failed', 'Could not connect');
    } else {
      showState(d.state === 'new' ? 'connecting' : d.state);
    }
  });
  client.addEventListener('icefailed', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').IceFailedDetail>} */ (ev).detail;
    openvisit.ice = d;
    // A call that was up and dropped usually comes back by itself: say so
    // only when the next attempt fails too.
    if (!d.wasConnected || d.failures > 1) showIceHelp(d.report, openvisit.help);
  });
  client.addEventListener('participantjoined', (ev) => {
    const p = /** @type {CustomEvent} */ (ev).detail.participant;
    someoneLeft = false;
    const t = tileFor(p.id, p.role);
    t.tile.dataset.role = p.role;
  });
  client.addEventListener('participantleft', (ev) => {
    someoneLeft = true;
    removeTile(/** @type {CustomEvent} */ (ev).detail.participant.id);
  });
  client.addEventListener('track', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').TrackDetail>} */ (ev).detail;
    const role = client.participants.get(d.participant)?.role;
    const t = tileFor(d.participant, role);
    if (role) t.tile.dataset.role = role;
    trackOwner.set(d.track.id, d.participant);
    const el = d.track.kind === 'audio' ? t.audio : t.video;
    if (el.srcObject !== d.stream) {
      el.srcObject = d.stream;
    }
    if (d.track.kind === 'video') watchSize(client, t.video, d.track);
    play(el, t.tile);
  });
  client.addEventListener('error', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').ErrorDetail>} */ (ev).detail;
    console.warn('openvisit: error', d.code);
    openvisit.lastError = d.code;
    if (d.code === 'removed' || d.code === 'visit_closed' || d.code === 'duplicate') return; // the close that follows explains it
    if (client.iceFailures > 0 && (d.code === 'ice_failed' || d.code === 'reconnect_failed')) return; // the connection panel explains it
    showError(d.message || 'Something went wrong.');
  });
  client.addEventListener('closed', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').ClosedDetail>} */ (ev).detail;
    openvisit.closed = { code: d.code, reason: d.reason };
    if (left) return;
    for (const id of [...tiles.keys()]) removeTile(id);
    if (endedByMe) {
      endedByServer = true;
      showEnded('The visit has ended', 'You ended the visit for everyone.');
    } else if (d.code === 4009) {
      endedByServer = true;
      showEnded('Opened in another window', closeReason(d.code));
    } else if (client.iceFailures > 0 && (client.state === 'failed' || d.reason === 'reconnect_failed')) {
      showIceHelp(client.ice, openvisit.help);
      showEnded('Your video could not connect', 'The call could not be set up from this network. What was tried, and what you can do, is above.');
    } else if (client.state === 'failed') {
      showEnded('Disconnected', openvisit.mode === 'provider'
        ? 'The call could not continue. Join again from your visits page.'
        : openvisit.mode === 'patient'
          ? 'The call could not continue. Reload this page to rejoin.'
          : 'The call could not continue. Ask for a new visit link to rejoin.');
    } else if (d.code === 4010 && openvisit.mode === 'provider') {
      endedByServer = true;
      showEnded('You were removed from the visit', closeReason(d.code));
    } else if (d.code === 1000 || d.code === 4010) {
      endedByServer = true;
      const st = openvisit.visitState;
      if (openvisit.mode === 'patient' && st && st.me && st.me.state === 'removed') {
        showEnded('You were removed from the visit', 'Your provider removed you from this visit. Contact your clinic if you have questions.');
      } else {
        showEnded('The visit has ended', openvisit.mode === 'patient'
          ? 'Your provider ended the visit. Thank you; you can close this page.'
          : closeReason(d.code));
      }
    } else showEnded('Disconnected', closeReason(d.code));
  });

  ui.mute.addEventListener('click', () => {
    const on = !client.isMuted();
    client.setMuted(on);
    setPressed(ui.mute, on);
    ui.selfTile.classList.toggle('muted', on);
  });
  ui.camera.addEventListener('click', () => {
    const off = !client.isCameraOff();
    client.setCameraOff(off);
    setPressed(ui.camera, off);
    ui.selfTile.classList.toggle('camera-off', off);
  });
  ui.share.addEventListener('click', () => (screen ? stopShare() : startShare()));
  ui.settings.addEventListener('click', async () => {
    const open = ui.devicePanel.hidden;
    ui.devicePanel.hidden = !open;
    ui.settings.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) {
      await fillSelect(ui.camSelect, 'videoinput', camera);
      await fillSelect(ui.micSelect, 'audioinput', client.sending('audio'));
      ui.camSelect.focus();
    }
  });
  ui.camSelect.addEventListener('change', () => switchDevice('video', ui.camSelect.value));
  ui.micSelect.addEventListener('change', () => switchDevice('audio', ui.micSelect.value));
  ui.leave.addEventListener('click', () => {
    left = true;
    if (session) post(`/api/v1/visits/${encodeURIComponent(visit)}/leave`, {}, { redirect401: false }).catch(() => {});
    client.leave();
    for (const id of [...tiles.keys()]) removeTile(id);
    showEnded('You left the visit', openvisit.mode === 'patient'
      ? 'You can rejoin while the visit lasts: reload this page.'
      : 'You can close this page.');
  });
  window.addEventListener('pagehide', () => {
    if (!left) client.leave();
  });
  qualityTimer = setInterval(updateQuality, 2000);

  try {
    await client.start(stream);
  } catch {
    // The state and closed events have said what happened.
  }
}

main();

/**
 * Tells the SFU the size at which a remote video is shown, so that it sends
 * the smallest simulcast layer that looks sharp there (0×0 while the page
 * is hidden).
 * Debounced: layout changes arrive in bursts.
 * @param {import('./client.js').VisitClient} client
 * @param {HTMLVideoElement} video
 * @param {MediaStreamTrack} track
 */
function watchSize(client, video, track) {
  if (typeof ResizeObserver === 'undefined') return;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  let last = '';
  const report = () => {
    if (document.visibilityState === 'hidden') return;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(video.clientWidth * dpr);
    const h = Math.round(video.clientHeight * dpr);
    // Never 0×0 from here: a tile not laid out yet would otherwise stop the
    // very video that gives it a size.
    if (w === 0 || h === 0) return;
    const key = w + 'x' + h;
    if (key === last) return;
    last = key;
    client.setVideoSize(track.id, w, h);
  };
  const ro = new ResizeObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(report, 250);
  });
  ro.observe(video);
  // A hidden page (another tab in front, a minimised window) shows
  // nothing: the SFU stops sending this video and, when nobody else
  // watches, the sender's phone stops encoding it, until the page is back.
  const onVisibility = () => {
    clearTimeout(timer);
    if (document.visibilityState === 'hidden') {
      last = '0x0';
      client.setVideoSize(track.id, 0, 0);
    } else {
      report();
    }
  };
  document.addEventListener('visibilitychange', onVisibility);
  track.addEventListener('ended', () => {
    ro.disconnect();
    document.removeEventListener('visibilitychange', onVisibility);
  }, { once: true });
}
