// The call page's tiles of the other participants: one per participant,
// with their video, their sound (a separate element, so that a muted video
// still plays sound), their network quality and their name; the line shown
// while nobody else is there; playback that survives a refused autoplay;
// and the size hints that let the SFU pick the simulcast layer a tile needs.

import { h } from './dom.js';
import { put, tr } from './i18n.js';

/**
 * @typedef {object} Tile
 * @property {HTMLElement} tile
 * @property {HTMLVideoElement} video
 * @property {HTMLAudioElement} audio
 * @property {HTMLElement} quality
 * @property {HTMLElement} caption
 *
 * @typedef {object} TilesOptions
 * @property {HTMLElement} container  where tiles go
 * @property {HTMLElement} waiting    the line shown while there is no tile
 * @property {(role: string|undefined) => string} label  a tile's caption for a participant's role
 * @property {() => string} waitingText  what the waiting line says
 * @property {(id: string) => void} [removed]  a tile was removed
 */

/** The tiles of the other participants, by participant ID. */
export class Tiles {
  /** @param {TilesOptions} o */
  constructor(o) {
    /** @private */ this.o = o;
    /** @type {Map<string, Tile>} */ this.byId = new Map();
  }

  /**
   * The tile of participant id, made on first use.
   * @param {string} id @param {string} [role]
   * @returns {Tile}
   */
  get(id, role) {
    let t = this.byId.get(id);
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
    cap.textContent = this.o.label(role);
    tile.append(video, audio, quality, cap);
    this.o.container.append(tile);
    t = { tile, video, audio, quality, caption: cap };
    this.byId.set(id, t);
    this.updateWaiting();
    return t;
  }

  /** @param {string} id */
  remove(id) {
    const t = this.byId.get(id);
    if (!t) return;
    t.video.srcObject = null;
    t.audio.srcObject = null;
    t.tile.remove();
    this.byId.delete(id);
    if (this.o.removed) this.o.removed(id);
    this.updateWaiting();
  }

  removeAll() {
    for (const id of [...this.byId.keys()]) this.remove(id);
  }

  /** Shows the waiting line while there is no tile, with its current words. */
  updateWaiting() {
    this.o.waiting.hidden = this.byId.size > 0;
    put(this.o.waiting, this.o.waitingText());
  }
}

/**
 * Plays a media element, retrying on the next user gesture when autoplay is
 * refused.
 * @param {HTMLMediaElement} el
 * @param {HTMLElement} [tile] where to show a "turn on sound" button
 */
export function play(el, tile) {
  el.play().catch((err) => {
    if (err && err.name === 'AbortError') return; // replaced by a newer load
    if (!tile || tile.querySelector('.unblock')) return;
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'unblock';
    tr(b, el instanceof HTMLAudioElement ? 'call.turn_on_sound' : 'call.play_video');
    b.addEventListener('click', () => {
      b.remove();
      for (const m of tile.querySelectorAll('video, audio')) play(/** @type {HTMLMediaElement} */ (m));
    });
    tile.append(b);
  });
}

/**
 * Tells the SFU the size at which a remote video is shown, so that it sends
 * the smallest simulcast layer that looks sharp there (0×0 while the page
 * is hidden).
 * Debounced: layout changes arrive in bursts.
 * @param {import('./client.js').VisitClient} client
 * @param {HTMLVideoElement} video
 * @param {MediaStreamTrack} track
 */
export function watchSize(client, video, track) {
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
