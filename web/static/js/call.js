// The call page, reached two ways:
//   /call#code=<one-time code>  a patient's (or the demo's) link. The code
//     lives in the fragment so that it never reaches a server log or a
//     Referer header; it is removed from the address bar before anything
//     else happens.
//   /call?visit=<visit ID>  a signed-in provider. The page asks the API for a
//     join grant with the session (a visit ID is an opaque ID, fine in a URL),
//     and follows the session's idle logoff.

import { APIError, loadSession, post } from './api.js';
import { VisitClient } from './client.js';
import { startIdleLogoff } from './session.js';

/**
 * @typedef {object} Redeemed
 * @property {string} visit_id
 * @property {string} participant_id
 * @property {string} role
 * @property {string} token
 * @property {string} ws_url
 * @property {RTCIceServer[]} [ice_servers]
 */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const ui = {
  state: $('state'),
  tiles: $('tiles'),
  local: /** @type {HTMLVideoElement} */ ($('local')),
  selfTile: $('self-tile'),
  waiting: $('waiting'),
  mute: /** @type {HTMLButtonElement} */ ($('mute')),
  camera: /** @type {HTMLButtonElement} */ ($('camera')),
  leave: /** @type {HTMLButtonElement} */ ($('leave')),
  call: $('call'),
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
  /** @type {MediaStream|null} */ localStream: null,
  /** @type {{code: number, reason: string}|null} how the media socket closed */ closed: null,
  /** @type {string} the last error code the server or client reported */ lastError: '',
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
  ui.call.hidden = true;
  ui.endedTitle.textContent = title;
  ui.endedReason.textContent = reason;
  ui.ended.hidden = false;
  stopLocal();
}

function stopLocal() {
  if (openvisit.localStream) {
    for (const t of openvisit.localStream.getTracks()) t.stop();
  }
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
 * Joins a visit as the signed-in user: the session's join grant has the
 * same shape as a redeemed code. A missing session goes to /signin.
 * @param {string} visit
 * @returns {Promise<Redeemed>}
 */
async function joinWithSession(visit) {
  if (!VISIT_ID.test(visit)) throw new Error('This is not a valid visit address. Open the visit from your visits page.');
  /** @type {any} */
  let body;
  try {
    const view = await loadSession();
    // A live call is activity the server cannot see: keep the session while connected.
    startIdleLogoff(view, { keepAliveWhen: () => !!openvisit.client && openvisit.client.state === 'connected' });
    body = await post(`/api/v1/visits/${encodeURIComponent(visit)}/join`, {});
  } catch (err) {
    if (err instanceof APIError && err.status === 401) throw new Error('Please sign in to join the visit.');
    throw err;
  }
  if (!body || !body.token || !body.ws_url || !body.visit_id) {
    throw new Error('The server sent an unexpected answer.');
  }
  return body;
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

/** @type {Map<string, {tile: HTMLElement, video: HTMLVideoElement, audio: HTMLAudioElement}>} */
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
  const cap = document.createElement('figcaption');
  cap.textContent = roleLabel(role);
  tile.append(video, audio, cap);
  ui.tiles.append(tile);
  t = { tile, video, audio };
  tiles.set(id, t);
  updateWaiting();
  return t;
}

/** @param {string|undefined} role */
function roleLabel(role) {
  if (role === 'provider') return 'Provider';
  if (role === 'patient') return 'Patient';
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
  updateWaiting();
}

let someoneLeft = false;

function updateWaiting() {
  ui.waiting.hidden = tiles.size > 0;
  ui.waiting.textContent = someoneLeft
    ? 'The other participant left the visit.'
    : 'Waiting for the other participant to join…';
}

/** @param {HTMLButtonElement} b @param {boolean} on */
function setPressed(b, on) {
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
}

/** Signed in (a provider), rather than holding a patient's link. */
let staff = false;

/** Close codes of PROTOCOL.md, in words a patient (or provider) can act on. */
function closeReason(/** @type {number} */ code) {
  if (staff) {
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
  staff = !code && !!visit;
  if (staff) {
    ui.endedHome.href = '/provider';
    ui.endedHome.textContent = 'Back to your visits';
  }
  if (!code && !visit) {
    showState('failed', 'Could not join');
    showError('This page needs the visit link from your invitation. Open that link again.');
    ui.call.hidden = true;
    return;
  }

  showState('redeeming', staff ? 'Joining the visit…' : undefined);
  /** @type {Redeemed} */
  let r;
  try {
    r = staff ? await joinWithSession(visit) : await redeem(code);
  } catch (err) {
    showState('failed', 'Could not join');
    showError(err instanceof Error ? err.message : 'The visit link could not be used.');
    ui.call.hidden = true;
    return;
  }
  openvisit.self = r.participant_id;

  showState('media');
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (err) {
    showState('failed', 'No camera or microphone');
    const name = err instanceof Error ? err.name : '';
    showError(name === 'NotAllowedError'
      ? 'Camera and microphone access was refused. Allow it in your browser settings and reload.'
      : 'No camera or microphone could be opened.');
    return;
  }
  openvisit.localStream = stream;
  ui.local.srcObject = stream;
  play(ui.local);

  const client = new VisitClient({
    url: r.ws_url,
    token: r.token,
    visit: r.visit_id,
    iceServers: r.ice_servers || [],
  });
  openvisit.client = client;
  let left = false;
  // The server ended the call on purpose (visit ended, participant removed):
  // a clean end, not a connection failure.
  let endedByServer = false;

  client.addEventListener('state', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').StateDetail>} */ (ev).detail;
    if (endedByServer && (d.state === 'failed' || d.state === 'closed')) {
      showState('closed', openvisit.closed && openvisit.closed.code === 4010 ? 'Removed from the visit' : undefined);
      return;
    }
    showState(d.state === 'new' ? 'connecting' : d.state);
  });
  client.addEventListener('participantjoined', (ev) => {
    const p = /** @type {CustomEvent} */ (ev).detail.participant;
    someoneLeft = false;
    tileFor(p.id, p.role);
  });
  client.addEventListener('participantleft', (ev) => {
    someoneLeft = true;
    removeTile(/** @type {CustomEvent} */ (ev).detail.participant.id);
  });
  client.addEventListener('track', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').TrackDetail>} */ (ev).detail;
    const t = tileFor(d.participant, client.participants.get(d.participant)?.role);
    const el = d.track.kind === 'audio' ? t.audio : t.video;
    if (el.srcObject !== d.stream) {
      el.srcObject = d.stream;
    }
    play(el, t.tile);
  });
  client.addEventListener('error', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').ErrorDetail>} */ (ev).detail;
    console.warn('openvisit: error', d.code);
    openvisit.lastError = d.code;
    if (d.code === 'removed') return; // the close that follows explains it
    showError(d.message || 'Something went wrong.');
  });
  client.addEventListener('closed', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').ClosedDetail>} */ (ev).detail;
    openvisit.closed = { code: d.code, reason: d.reason };
    if (left) return;
    for (const id of [...tiles.keys()]) removeTile(id);
    if (client.state === 'failed') {
      showEnded('Disconnected', staff
        ? 'The call could not continue. Join again from your visits page.'
        : 'The call could not continue. Ask for a new visit link to rejoin.');
    } else if (d.code === 4010 && staff) {
      endedByServer = true;
      showEnded('You were removed from the visit', closeReason(d.code));
    } else if (d.code === 1000 || d.code === 4010) {
      endedByServer = true;
      showEnded('The visit has ended', closeReason(d.code));
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
  ui.leave.addEventListener('click', () => {
    left = true;
    client.leave();
    for (const id of [...tiles.keys()]) removeTile(id);
    showEnded('You left the visit', 'You can close this page.');
  });
  window.addEventListener('pagehide', () => {
    if (!left) client.leave();
  });

  try {
    await client.start(stream);
  } catch {
    // The state and closed events have said what happened.
  }
}

main();
