// The call page's own media: the self-view, switching camera or microphone
// during the call, and sharing the screen (provider) in place of the
// camera. Tracks are swapped with the client's replaceTrack: no
// renegotiation. The camera is kept while the screen is shared and comes
// back when sharing stops.

import { openTrack, saveDevices } from './devices.js';
import { play } from './call-tiles.js';
import { sayT, tr } from './i18n.js';

/**
 * @typedef {object} LocalMediaOptions
 * @property {() => import('./client.js').VisitClient|null} client
 * @property {HTMLVideoElement} video  the self-view
 * @property {HTMLElement} selfTile
 * @property {HTMLButtonElement} share
 * @property {HTMLElement} status  says what device switching did
 */

/** @param {HTMLButtonElement} b @param {boolean} on */
export function setPressed(b, on) {
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
}

export class LocalMedia {
  /** @param {LocalMediaOptions} o */
  constructor(o) {
    /** @private */ this.o = o;
    /** @type {MediaStream|null} what the page shows as "you" */ this.stream = null;
    /** @type {MediaStreamTrack|null} the camera, kept while the screen is shared */ this.camera = null;
    /** @type {MediaStreamTrack|null} */ this.screen = null;
  }

  /** Shows the opened camera and microphone. @param {MediaStream} stream */
  use(stream) {
    this.stream = stream;
    this.camera = stream.getVideoTracks()[0] || null;
    this.o.video.srcObject = stream;
    play(this.o.video);
  }

  /** Stops every local track (the call is over). */
  stop() {
    const all = new Set([...(this.stream ? this.stream.getTracks() : []), ...(this.camera ? [this.camera] : []), ...(this.screen ? [this.screen] : [])]);
    for (const t of all) t.stop();
    this.o.video.srcObject = null;
  }

  /** Replaces the page's own track of that kind with track in the self-view. @private @param {MediaStreamTrack} track */
  showLocal(track) {
    const s = this.stream;
    if (!s) return;
    for (const t of s.getTracks().filter((t) => t.kind === track.kind)) s.removeTrack(t);
    s.addTrack(track);
    this.o.video.srcObject = s;
    play(this.o.video);
  }

  /** @param {'audio'|'video'} kind @param {string} deviceId */
  async switchDevice(kind, deviceId) {
    const c = this.o.client();
    if (!c || !deviceId) return;
    const status = this.o.status;
    sayT(status, kind === 'video' ? 'call.switching_camera' : 'call.switching_mic');
    let track;
    try {
      track = await openTrack(kind, deviceId);
    } catch {
      sayT(status, 'call.device_failed');
      return;
    }
    saveDevices({ [kind]: deviceId });
    if (kind === 'video' && this.screen) {
      // Sharing the screen: the new camera comes back when sharing stops.
      if (this.camera) this.camera.stop();
      this.camera = track;
      sayT(status, 'call.camera_switched_sharing');
      return;
    }
    const old = c.sending(kind);
    await c.replaceTrack(track);
    this.showLocal(track);
    if (old && old !== track) old.stop();
    if (kind === 'video') this.camera = track;
    sayT(status, kind === 'video' ? 'call.camera_switched' : 'call.mic_switched');
  }

  toggleShare() {
    return this.screen ? this.stopShare() : this.startShare();
  }

  /** @private */
  async startShare() {
    const c = this.o.client();
    if (!c || this.screen) return;
    /** @type {MediaStream} */
    let s;
    try {
      s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch {
      return; // the user chose nothing
    }
    const screen = s.getVideoTracks()[0];
    this.screen = screen || null;
    if (!screen) return;
    this.camera = c.sending('video');
    screen.addEventListener('ended', () => this.stopShare());
    await c.replaceTrack(screen);
    screen.enabled = true;
    this.showLocal(screen);
    setPressed(this.o.share, true);
    tr(this.o.share, 'call.stop_sharing');
    this.o.selfTile.classList.add('sharing');
  }

  /** @private */
  async stopShare() {
    const c = this.o.client();
    const s = this.screen;
    if (!s) return;
    this.screen = null;
    if (c && this.camera) {
      await c.replaceTrack(this.camera);
      this.showLocal(this.camera);
    }
    s.stop();
    setPressed(this.o.share, false);
    tr(this.o.share, 'call.share');
    this.o.selfTile.classList.remove('sharing');
  }
}
