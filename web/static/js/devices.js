// Camera and microphone helpers shared by the device check (join.js) and
// the call page: the remembered choice of devices, opening them, listing
// them in <select>s, and a microphone level meter.
//
// The chosen device IDs are kept in localStorage: they are opaque,
// per-origin IDs, nothing that identifies a person.

import { t } from './i18n.js';

const KEY = 'openvisit.devices';

/** @typedef {{audio?: string, video?: string}} DeviceChoice */

/** @returns {DeviceChoice} */
export function savedDevices() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || '{}');
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}

/** @param {DeviceChoice} choice */
export function saveDevices(choice) {
  try {
    localStorage.setItem(KEY, JSON.stringify({ ...savedDevices(), ...choice }));
  } catch {
    // storage refused (private mode): the default devices it is
  }
}

/**
 * getUserMedia constraints for one kind, preferring the remembered device.
 * @param {'audio'|'video'} kind
 * @param {string} [deviceId] overrides the remembered one (exact)
 * @returns {MediaTrackConstraints}
 */
export function constraintsFor(kind, deviceId) {
  /** @type {MediaTrackConstraints} */
  const c = kind === 'video' ? { width: { ideal: 1280 }, height: { ideal: 720 } } : {};
  if (deviceId) c.deviceId = { exact: deviceId };
  else {
    const saved = savedDevices()[kind];
    if (saved) c.deviceId = { ideal: saved };
  }
  return c;
}

/**
 * Opens the camera and microphone (the remembered ones when present).
 * @returns {Promise<MediaStream>}
 */
export function openMedia() {
  return navigator.mediaDevices.getUserMedia({ audio: constraintsFor('audio'), video: constraintsFor('video') });
}

/**
 * Opens one device of a kind and returns its track.
 * @param {'audio'|'video'} kind
 * @param {string} deviceId
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openTrack(kind, deviceId) {
  const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraintsFor(kind, deviceId) });
  return s.getTracks()[0];
}

/**
 * Fills a <select> with the devices of a kind, selecting the one in use.
 * @param {HTMLSelectElement} select
 * @param {'audioinput'|'videoinput'} kind
 * @param {MediaStreamTrack|null} current
 */
export async function fillSelect(select, kind, current) {
  const all = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  const list = all.filter((d) => d.kind === kind && d.deviceId);
  const using = current ? current.getSettings().deviceId : '';
  select.replaceChildren(...list.map((d, i) => {
    const o = document.createElement('option');
    o.value = d.deviceId;
    o.textContent = d.label || t(kind === 'videoinput' ? 'common.camera_n' : 'common.microphone_n', { n: i + 1 });
    o.selected = d.deviceId === using;
    return o;
  }));
  select.disabled = list.length < 2;
}

/**
 * A microphone level meter: an AnalyserNode on the track, sampled ten times
 * a second into onLevel (0..1, roughly perceived loudness).
 * Stop it with the returned function.
 * @param {MediaStreamTrack} track
 * @param {(level: number) => void} onLevel
 * @returns {() => void}
 */
export function levelMeter(track, onLevel) {
  const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
  if (!Ctx) return () => {};
  const ctx = new Ctx();
  const src = ctx.createMediaStreamSource(new MediaStream([track]));
  const an = ctx.createAnalyser();
  an.fftSize = 1024;
  src.connect(an);
  const buf = new Float32Array(an.fftSize);
  const timer = setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const rms = Math.sqrt(sum / buf.length);
    onLevel(Math.min(1, rms * 5));
  }, 100);
  ctx.resume().catch(() => {});
  return () => {
    clearInterval(timer);
    src.disconnect();
    ctx.close().catch(() => {});
  };
}

/**
 * Plays a short, gentle two-note tone through the default output.
 * Resolves when it has finished.
 * @returns {Promise<void>}
 */
export async function playTone() {
  const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
  if (!Ctx) throw new Error('no audio');
  const ctx = new Ctx();
  await ctx.resume();
  const t0 = ctx.currentTime + 0.05;
  for (const [i, f] of [[0, 523.25], [1, 659.25]]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = f;
    gain.gain.setValueAtTime(0, t0 + i * 0.5);
    gain.gain.linearRampToValueAtTime(0.25, t0 + i * 0.5 + 0.05);
    gain.gain.linearRampToValueAtTime(0, t0 + i * 0.5 + 0.45);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0 + i * 0.5);
    osc.stop(t0 + i * 0.5 + 0.5);
  }
  await new Promise((r) => setTimeout(r, 1100));
  await ctx.close().catch(() => {});
}

/**
 * What this browser lacks for a video visit (empty when nothing).
 * @returns {{id: string, ok: boolean, key: string}[]} key: the result's words in the catalogue (i18n.js)
 */
export function supportChecks() {
  return [
    { id: 'secure', ok: window.isSecureContext, key: window.isSecureContext ? 'join.check.secure' : 'join.check.insecure' },
    { id: 'webrtc', ok: typeof RTCPeerConnection === 'function', key: typeof RTCPeerConnection === 'function' ? 'join.check.webrtc' : 'join.check.no_webrtc' },
    { id: 'media', ok: canOpenMedia(), key: canOpenMedia() ? 'join.check.media' : 'join.check.no_media' },
  ];
}

/** The browser has getUserMedia (an old or insecure one may not). */
function canOpenMedia() {
  return !!navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function';
}
