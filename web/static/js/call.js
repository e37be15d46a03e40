// The call page: /call#code=<one-time code>. The code lives in the fragment
// so that it never reaches a server log or a Referer header; it is removed
// from the address bar before anything else happens.

import { VisitClient } from './client.js';

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

/** Close codes of PROTOCOL.md, in words a patient can act on. */
function closeReason(/** @type {number} */ code) {
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
  if (!code) {
    showState('failed', 'Could not join');
    showError('This page needs the visit link from your invitation. Open that link again.');
    ui.call.hidden = true;
    return;
  }

  showState('redeeming');
  /** @type {Redeemed} */
  let r;
  try {
    r = await redeem(code);
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

  client.addEventListener('state', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').StateDetail>} */ (ev).detail;
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
    showError(d.message || 'Something went wrong.');
  });
  client.addEventListener('closed', (ev) => {
    const d = /** @type {CustomEvent<import('./client.js').ClosedDetail>} */ (ev).detail;
    if (left) return;
    for (const id of [...tiles.keys()]) removeTile(id);
    if (client.state === 'failed') showEnded('Disconnected', 'The call could not continue. Ask for a new visit link to rejoin.');
    else if (d.code === 1000 || d.code === 4010) showEnded('The visit has ended', closeReason(d.code));
    else showEnded('Disconnected', closeReason(d.code));
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
