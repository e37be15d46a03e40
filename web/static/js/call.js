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

// Each concern has its module: call-grant.js (join grants), call-tiles.js
// (the others' tiles), call-media.js (the self-view, device switching,
// screen sharing), call-quality.js, call-room.js (the provider's
// waiting-room panel), call-recording.js (consent and recording) and
// call-ice.js (what a failed connection tried). This file joins the visit
// and wires them together.

import { APIError, loadSession, post } from './api.js';
import { VISIT_ID, fetchGrant, redeem, relayOnly, takeCode } from './call-grant.js';
import { showIceHelp } from './call-ice.js';
import { ChatPanel } from './call-chat.js';
import { LocalMedia, setPressed } from './call-media.js';
import { QualityMonitor } from './call-quality.js';
import { startRecordingUI } from './call-recording.js';
import { WaitingRoom } from './call-room.js';
import { Grid, roleText } from './call-grid.js';
import { Tiles, play, watchSize } from './call-tiles.js';
import { VisitClient } from './client.js';
import { fillSelect, openMedia } from './devices.js';
import { startIdleLogoff } from './session.js';
import { FINAL_STATUS, VisitEvents } from './visit-events.js';
import { put, remembered, setLanguage, startI18n, t, tr } from './i18n.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const ui = {
  state: $('state'),
  local: /** @type {HTMLVideoElement} */ ($('local')),
  selfTile: $('self-tile'),
  mute: /** @type {HTMLButtonElement} */ ($('mute')),
  camera: /** @type {HTMLButtonElement} */ ($('camera')),
  share: /** @type {HTMLButtonElement} */ ($('share')),
  settings: /** @type {HTMLButtonElement} */ ($('settings')),
  devicePanel: $('device-panel'),
  camSelect: /** @type {HTMLSelectElement} */ ($('cam-select')),
  micSelect: /** @type {HTMLSelectElement} */ ($('mic-select')),
  leave: /** @type {HTMLButtonElement} */ ($('leave')),
  layout: $('layout'),
  room: $('room'),
  ended: $('ended'),
  endedTitle: $('ended-title'),
  endedReason: $('ended-reason'),
  endedHome: /** @type {HTMLAnchorElement} */ ($('ended-home')),
  error: $('error'),
};

/** Each state's words: catalogue keys (i18n.js). */
const STATE_TEXT = {
  starting: 'call.state.starting',
  redeeming: 'call.state.redeeming',
  media: 'call.state.media',
  connecting: 'call.state.connecting',
  connected: 'call.state.connected',
  reconnecting: 'call.state.reconnecting',
  failed: 'call.state.failed',
  closed: 'call.state.closed',
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
  /** @type {import('./visit-events.js').VisitState|null} the last visit state event (waiting room) */ visitState: null,
  /** @type {Record<string, import('./call-quality.js').Quality>} by participant ID, "self" for this page */
  quality: {},
  /** @type {import('./call-recording.js').RecordingState|null} the recording state the page shows (signed-in visits) */
  recording: null,
  /** @type {import('./client.js').IceFailedDetail|null} the last failed connection attempt and what it tried */
  ice: null,
  /** @type {import('./call-ice.js').Help|null} the clinic's help line, from the join grant */
  help: null,
};
/** @type {any} */ (window).openvisit = openvisit;

/** The call is live: connected, or reconnecting after it was. */
const live = () => !!openvisit.client && ['connected', 'reconnecting'].includes(openvisit.client.state);

/** How the call ended, as far as the page knows. */
const end = {
  /** the user pressed Leave */
  left: false,
  /** the server ended the call on purpose (visit ended, participant removed): a clean end, not a connection failure */
  byServer: false,
};

let someoneLeft = false;

const tiles = new Tiles({
  container: $('tiles'),
  waiting: $('waiting'),
  label: roleLabel,
  waitingText: () => (someoneLeft
    ? 'call.other_left'
    : openvisit.mode === 'provider' ? 'Nobody else is in the call yet. Admit your patient from the waiting room.'
      : 'call.waiting_other'),
  removed: (id) => { delete openvisit.quality[id]; },
});
// The grid: layout for 2–8 people, names and roles, pinning, the speaker.
const grid = new Grid({ container: $('tiles'), visit: () => openvisit.visit });
const quality = new QualityMonitor({ client: () => openvisit.client, self: $('self-quality'), tiles, quality: openvisit.quality });
const media = new LocalMedia({ client: () => openvisit.client, video: ui.local, selfTile: ui.selfTile, share: ui.share, status: $('device-status') });
const room = new WaitingRoom({
  visit: () => openvisit.visit,
  tiles,
  callOver: () => !openvisit.client || openvisit.client.state === 'closed' || openvisit.client.state === 'failed',
  ended: showEnded,
});

const chat = new ChatPanel({ visit: () => openvisit.visit, root: $('chat') });

/**
 * @param {keyof typeof STATE_TEXT} s  also set as document.body.dataset.state (tests and CSS read it)
 * @param {string} [text] replaces the default wording (a catalogue key, or a text)
 */
function showState(s, text) {
  document.body.dataset.state = s;
  put(ui.state, text || STATE_TEXT[s] || s);
}

/** @param {string} message a catalogue key, or a text */
function showError(message) {
  put(ui.error, message);
  ui.error.hidden = false;
}

/** @param {string} title @param {string} reason catalogue keys, or texts */
function showEnded(title, reason) {
  ui.layout.hidden = true;
  put(ui.endedTitle, title);
  put(ui.endedReason, reason);
  ui.ended.hidden = false;
  ui.endedTitle.focus();
  media.stop();
  stopWatching();
  quality.stop();
  grid.stop();
}

/** @param {string} message */
function cannotJoin(message) {
  showState('failed', 'call.state.could_not_join');
  showError(message);
  ui.layout.hidden = true;
}

/** @param {string|undefined} role */
function roleLabel(role) {
  if (role === 'patient' && openvisit.visitState && openvisit.visitState.patient_name) return openvisit.visitState.patient_name;
  return roleText(role);
}

// ---- joining ------------------------------------------------------------

/** A demo link's grant, or null when the page says why there is none. @param {string} code */
async function joinDemo(code) {
  openvisit.mode = 'demo';
  try {
    return await redeem(code);
  } catch (err) {
    cannotJoin(err instanceof Error ? err.message : 'The visit link could not be used.');
    return null;
  }
}

/**
 * A signed-in participant's grant (provider, or an admitted patient), or
 * null when the page says why there is none. Starts what a session brings:
 * the idle logoff, the visit's state events, the recording panel.
 * @param {string} visit
 */
async function joinWithSession(visit) {
  if (!VISIT_ID.test(visit)) {
    cannotJoin('call.err.bad_visit');
    return null;
  }
  /** @type {import('./api.js').SessionView} */
  let view;
  try {
    view = await loadSession({ redirect401: false });
  } catch (err) {
    cannotJoin(err instanceof APIError && err.status === 401 ? 'call.err.signed_out' : 'common.network');
    return null;
  }
  openvisit.mode = view.kind === 'patient' ? 'patient' : 'provider';
  // A patient's page speaks their invite's language unless they chose one in this tab.
  if (view.lang && !remembered()) await setLanguage(view.lang, { remember: true });
  openvisit.visit = visit;
  keepSession(view);
  /** @type {import('./call-grant.js').Grant} */
  let r;
  try {
    r = await fetchGrant(visit);
  } catch (err) {
    refused(err);
    return null;
  }
  if (openvisit.mode === 'provider') {
    ui.room.hidden = false;
    ui.share.hidden = !(navigator.mediaDevices && 'getDisplayMedia' in navigator.mediaDevices);
  }
  watchVisit(visit);
  chat.show();
  startRecordingUI({
    visit,
    mode: openvisit.mode === 'patient' ? 'patient' : 'provider',
    live: () => ui.ended.hidden && live(),
    onState: (st) => { openvisit.recording = st; },
  });
  return r;
}

/** Keeps the session while the call is live, and says where "back" goes. @param {import('./api.js').SessionView} view */
function keepSession(view) {
  if (openvisit.mode === 'provider') {
    ui.endedHome.href = '/provider';
    put(ui.endedHome, 'Back to your visits');
    // A live call is activity the server cannot see: keep the session while in it.
    startIdleLogoff(view, { keepAliveWhen: live });
  } else {
    ui.endedHome.href = '/';
    tr(ui.endedHome, 'call.ended.home_patient');
    // The patient's session idles out like any other: a call is activity.
    setInterval(() => {
      if (live()) post('/api/v1/auth/keepalive', {}, { redirect401: false }).catch(() => {});
    }, 4 * 60_000);
  }
}

/** The first join grant was refused: back to the waiting room, the end, or why. @param {unknown} err */
function refused(err) {
  const e = /** @type {any} */ (err);
  if (e.code === 'not_admitted') {
    location.replace('/join'); // back to the waiting room
    return;
  }
  if (e.code === 'visit_closed') {
    showState('closed');
    showEnded('call.ended.title', 'call.ended.over');
    return;
  }
  cannotJoin(e.status === 401 || e.status === 404
    ? 'call.err.not_yours'
    : (err instanceof Error ? err.message : 'The visit could not be joined.'));
}

// ---- visit state (waiting room for the provider, the patient's own state) ----

/** @type {VisitEvents|null} */
let events = null;

function stopWatching() {
  if (events) events.close();
  events = null;
}

/** @param {string} visit */
function watchVisit(visit) {
  events = new VisitEvents(visit, {
    state: (st) => {
      openvisit.visitState = st;
      if (openvisit.mode === 'provider') room.render(st);
      else patientState(st);
      if (FINAL_STATUS.includes(st.status)) stopWatching();
    },
    chat: (m) => chat.add(m),
  });
}

/** @param {import('./visit-events.js').VisitState} st */
function patientState(st) {
  if (st.me && st.me.state === 'removed' && !ui.ended.hidden) {
    tr(ui.endedTitle, 'call.ended.removed');
    tr(ui.endedReason, 'call.ended.removed_text');
  }
}

// ---- the call ------------------------------------------------------------

/** Close codes of PROTOCOL.md, in words a patient (or provider) can act on. */
function closeReason(/** @type {number} */ code) {
  if (openvisit.mode === 'provider') {
    switch (code) {
      case 4001: return 'The join grant expired before it was used. Join again from your visits page.';
      case 4010: return 'Your access to this visit ended: you were signed out, your account was changed, or the visit was closed.';
    }
  }
  switch (code) {
    case 4001: return 'call.close.4001';
    case 4003: return 'call.close.4003';
    case 4009: return 'call.close.4009';
    case 4010: return 'error.visit_ended';
    case 1000: return 'error.visit_ended';
    default: return 'call.close.lost';
  }
}

/** Opens the camera and microphone, or says why not. @returns {Promise<MediaStream|null>} */
async function openLocal() {
  showState('media');
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await openMedia();
  } catch (err) {
    showState('failed', 'call.state.no_devices');
    const name = err instanceof Error ? err.name : '';
    showError(name === 'NotAllowedError' ? 'call.err.media_refused' : 'call.err.no_media');
    return null;
  }
  openvisit.localStream = stream;
  media.use(stream);
  return stream;
}

/** @param {VisitClient} client @param {import('./client.js').StateDetail} d */
function onState(client, d) {
  if (end.byServer && (d.state === 'failed' || d.state === 'closed')) {
    showState('closed', openvisit.closed && openvisit.closed.code === 4010 && !room.endedByMe && openvisit.mode !== 'patient' ? 'Removed from the visit' : undefined);
    return;
  }
  if (d.state === 'connected') showIceHelp(undefined, null);
  // Honest words: a call that never connected is not "reconnecting".
  if (d.state === 'reconnecting' && client.iceFailures > 0 && !client.everConnected) {
    showState('reconnecting', 'call.state.retrying');
  } else if (d.state === 'failed' && client.iceFailures > 0) {
    showState('failed', 'call.state.could_not_connect');
  } else {
    showState(d.state === 'new' ? 'connecting' : d.state);
  }
}

/** @param {VisitClient} client @param {import('./client.js').TrackDetail} d */
function onTrack(client, d) {
  const role = client.participants.get(d.participant)?.role;
  const t = tiles.get(d.participant, role);
  if (role) t.tile.dataset.role = role;
  quality.owner(d.track.id, d.participant);
  const el = d.track.kind === 'audio' ? t.audio : t.video;
  if (el.srcObject !== d.stream) {
    el.srcObject = d.stream;
  }
  if (d.track.kind === 'video') watchSize(client, t.video, d.track);
  else grid.meter(d.participant, d.stream);
  play(el, t.tile);
}

/** @param {VisitClient} client @param {import('./client.js').ClosedDetail} d */
function onClosed(client, d) {
  openvisit.closed = { code: d.code, reason: d.reason };
  if (end.left) return;
  tiles.removeAll();
  if (room.endedByMe) {
    end.byServer = true;
    showEnded('call.ended.title', 'You ended the visit for everyone.');
  } else if (d.code === 4009) {
    end.byServer = true;
    showEnded('call.ended.other_window', closeReason(d.code));
  } else if (client.iceFailures > 0 && (client.state === 'failed' || d.reason === 'reconnect_failed')) {
    showIceHelp(client.ice, openvisit.help);
    showEnded('call.ice.title', 'call.ended.ice');
  } else if (client.state === 'failed') {
    showEnded('call.ended.disconnected', openvisit.mode === 'provider'
      ? 'The call could not continue. Join again from your visits page.'
      : openvisit.mode === 'patient' ? 'call.ended.disconnected_patient' : 'call.ended.disconnected_demo');
  } else if (d.code === 4010 && openvisit.mode === 'provider') {
    end.byServer = true;
    showEnded('You were removed from the visit', closeReason(d.code));
  } else if (d.code === 1000 || d.code === 4010) {
    end.byServer = true;
    const st = openvisit.visitState;
    if (openvisit.mode === 'patient' && st && st.me && st.me.state === 'removed') {
      showEnded('call.ended.removed', 'call.ended.removed_text');
    } else {
      showEnded('call.ended.title', openvisit.mode === 'patient' ? 'call.ended.by_provider' : closeReason(d.code));
    }
  } else showEnded('call.ended.disconnected', closeReason(d.code));
}

/** @param {VisitClient} client */
function listen(client) {
  /** @template T @param {string} type @param {(d: T) => void} fn */
  const on = (type, fn) => client.addEventListener(type, (ev) => fn(/** @type {CustomEvent<T>} */ (ev).detail));
  on('state', (/** @type {import('./client.js').StateDetail} */ d) => onState(client, d));
  on('icefailed', (/** @type {import('./client.js').IceFailedDetail} */ d) => {
    openvisit.ice = d;
    // A call that was up and dropped usually comes back by itself: say so
    // only when the next attempt fails too.
    if (!d.wasConnected || d.failures > 1) showIceHelp(d.report, openvisit.help);
  });
  on('participantjoined', (/** @type {import('./client.js').ParticipantDetail} */ d) => {
    someoneLeft = false;
    const t = tiles.get(d.participant.id, d.participant.role);
    t.tile.dataset.role = d.participant.role;
    grid.refresh();
  });
  on('participantleft', (/** @type {import('./client.js').ParticipantDetail} */ d) => {
    someoneLeft = true;
    tiles.remove(d.participant.id);
  });
  on('track', (/** @type {import('./client.js').TrackDetail} */ d) => onTrack(client, d));
  // Everyone already in the call: their names for the tiles.
  on('joined', () => grid.refresh());
  on('error', (/** @type {import('./client.js').ErrorDetail} */ d) => {
    console.warn('openvisit: error', d.code);
    openvisit.lastError = d.code;
    if (d.code === 'removed' || d.code === 'visit_closed' || d.code === 'duplicate') return; // the close that follows explains it
    if (client.iceFailures > 0 && (d.code === 'ice_failed' || d.code === 'reconnect_failed')) return; // the connection panel explains it
    showError(d.message || 'call.err.failed');
  });
  on('closed', (/** @type {import('./client.js').ClosedDetail} */ d) => onClosed(client, d));
}

/** The call controls. @param {VisitClient} client @param {boolean} session @param {string} visit */
function controls(client, session, visit) {
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
  ui.share.addEventListener('click', () => media.toggleShare());
  ui.settings.addEventListener('click', async () => {
    const open = ui.devicePanel.hidden;
    ui.devicePanel.hidden = !open;
    ui.settings.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) {
      await fillSelect(ui.camSelect, 'videoinput', media.camera);
      await fillSelect(ui.micSelect, 'audioinput', client.sending('audio'));
      ui.camSelect.focus();
    }
  });
  ui.camSelect.addEventListener('change', () => media.switchDevice('video', ui.camSelect.value));
  ui.micSelect.addEventListener('change', () => media.switchDevice('audio', ui.micSelect.value));
  ui.leave.addEventListener('click', () => {
    end.left = true;
    if (session) post(`/api/v1/visits/${encodeURIComponent(visit)}/leave`, {}, { redirect401: false }).catch(() => {});
    client.leave();
    tiles.removeAll();
    showEnded('call.ended.left', openvisit.mode === 'patient' ? 'call.ended.left_patient' : 'call.ended.close');
  });
  window.addEventListener('pagehide', () => {
    if (!end.left) client.leave();
  });
}

async function main() {
  await startI18n();
  showState('starting');
  const code = takeCode();
  const visit = new URLSearchParams(location.search).get('visit') || '';
  const session = !code && !!visit;
  if (!code && !visit) {
    cannotJoin('call.err.no_link');
    return;
  }
  showState('redeeming', session ? 'call.state.joining' : undefined);
  const r = session ? await joinWithSession(visit) : await joinDemo(code);
  if (!r) return;
  openvisit.self = r.participant_id;
  openvisit.help = r.help || null;
  tiles.updateWaiting();

  const stream = await openLocal();
  if (!stream) return;
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
  listen(client);
  controls(client, session, visit);
  quality.start();
  try {
    await client.start(stream);
  } catch {
    // The state and closed events have said what happened.
  }
}

main();
