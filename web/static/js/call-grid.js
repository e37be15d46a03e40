// The multi-party call's grid (issue 17): the tiles of up to eight people
// laid out to fit a 360 px phone and a desktop (the count is on the
// container, CSS picks the columns), names and roles on the tiles (from the
// visit's roster), the active speaker highlighted (an AudioContext analyser
// on each participant's sound), and one tile pinned large. The SFU's layer
// choice follows each tile's size through the size hints watchSize sends.

import { get } from './api.js';
import { t } from './i18n.js';

/** Every word this module shows, from the message catalogue (i18n.js). */
export const GRID_TEXT = {
  get provider() { return t('call.role.provider'); },
  get guestProvider() { return t('call.role.guest_provider'); },
  get patient() { return t('call.role.patient'); },
  get caregiver() { return t('call.role.caregiver'); },
  get interpreter() { return t('call.role.interpreter'); },
  get participant() { return t('call.role.other'); },
  get pin() { return t('call.grid.pin'); },
  get unpin() { return t('call.grid.unpin'); },
  /** @param {string} who */
  pinLabel: (who) => t('call.grid.pin_label', { who }),
  /** @param {string} who */
  unpinLabel: (who) => t('call.grid.unpin_label', { who }),
  /** @param {string} who */
  speaking: (who) => t('call.grid.speaking', { who }),
};

/**
 * @typedef {object} RosterEntry
 * @property {string} id
 * @property {string} role
 * @property {boolean} [guest]
 * @property {string} [name]
 */

/** A role's words. @param {string|undefined} role @param {boolean} [guest] */
export function roleText(role, guest) {
  if (role === 'provider') return guest ? GRID_TEXT.guestProvider : GRID_TEXT.provider;
  if (role === 'patient' || role === 'caregiver' || role === 'interpreter') return GRID_TEXT[role];
  return GRID_TEXT.participant;
}

/** How loud counts as speaking (RMS of the time-domain signal, 0..1). */
const SPEAKING_LEVEL = 0.02;

export class Grid {
  /**
   * @param {object} o
   * @param {HTMLElement} o.container  the tiles' container
   * @param {() => string} o.visit  the visit's ID
   * @param {HTMLElement} [o.announce]  a polite live region for who speaks
   */
  constructor(o) {
    /** @private */ this.o = o;
    /** @type {Map<string, RosterEntry>} */ this.roster = new Map();
    /** @type {string} */ this.pinned = '';
    /** @type {string} */ this.speaker = '';
    /** @private @type {AudioContext|null} */ this.ctx = null;
    /** @private @type {Map<string, {analyser: AnalyserNode, source: MediaStreamAudioSourceNode, buf: Float32Array<ArrayBuffer>}>} */
    this.meters = new Map();
    /** @private @type {ReturnType<typeof setInterval>|undefined} */ this.timer = undefined;
    /** @private */ this.observer = new MutationObserver(() => this.layout());
    this.observer.observe(o.container, { childList: true });
    this.layout();
  }

  /** Fetches the roster and renames the tiles; failures keep the old names. */
  async refresh() {
    const visit = this.o.visit();
    if (!visit) return; // a demo link's call has no visit session: roles only
    try {
      const r = /** @type {{participants: RosterEntry[]}} */ (await get('/api/v1/visits/' + encodeURIComponent(visit) + '/roster', { redirect401: false }));
      this.roster = new Map(r.participants.map((p) => [p.id, p]));
    } catch (err) {
      console.warn('openvisit: roster', err instanceof Error ? err.message : err);
      return;
    }
    for (const tile of this.tiles()) this.name(tile);
  }

  /** @private @returns {HTMLElement[]} */
  tiles() {
    return /** @type {HTMLElement[]} */ ([...this.o.container.querySelectorAll('.tile:not(.self)')]);
  }

  /** The caption and pin button of a remote tile. @param {HTMLElement} tile */
  name(tile) {
    const id = tile.dataset.participant || '';
    const who = this.roster.get(id);
    const role = who ? who.role : tile.dataset.role;
    const label = roleText(role, who && who.guest);
    const name = who && who.name ? who.name : '';
    const cap = tile.querySelector('figcaption');
    // Without a name from the roster the caption stays as the page made it
    // (the role, or the patient's name on the provider's page).
    if (cap && name) {
      cap.textContent = '';
      const n = document.createElement('span');
      n.className = 'tile-name';
      n.textContent = name;
      const r = document.createElement('span');
      r.className = 'tile-role';
      r.textContent = label;
      cap.append(n, ' ', r);
    }
    tile.dataset.name = name || (cap && cap.textContent) || label;
    this.pinButton(tile);
  }

  /** @private @param {HTMLElement} tile */
  pinButton(tile) {
    let b = /** @type {HTMLButtonElement|null} */ (tile.querySelector('button.pin'));
    if (!b) {
      b = document.createElement('button');
      b.type = 'button';
      b.className = 'pin';
      b.addEventListener('click', () => this.pin(this.pinned === tile.dataset.participant ? '' : tile.dataset.participant || ''));
      tile.append(b);
    }
    const on = this.pinned !== '' && this.pinned === tile.dataset.participant;
    b.textContent = on ? GRID_TEXT.unpin : GRID_TEXT.pin;
    b.setAttribute('aria-pressed', String(on));
    b.setAttribute('aria-label', on ? GRID_TEXT.unpinLabel(tile.dataset.name || '') : GRID_TEXT.pinLabel(tile.dataset.name || ''));
  }

  /** Pins participant id's tile large ('' unpins). @param {string} id */
  pin(id) {
    this.pinned = id;
    this.layout();
  }

  /** Sets the tile count and the pinned tile on the container (CSS lays them out). */
  layout() {
    const tiles = this.tiles();
    if (this.pinned && !tiles.some((t) => t.dataset.participant === this.pinned)) this.pinned = '';
    this.o.container.dataset.count = String(tiles.length + 1); // and the self tile
    this.o.container.classList.toggle('has-pinned', this.pinned !== '');
    for (const t of tiles) {
      t.classList.toggle('pinned', t.dataset.participant === this.pinned);
      if (!t.querySelector('button.pin')) this.name(t);
      else this.pinButton(t);
    }
    for (const id of [...this.meters.keys()]) {
      if (!tiles.some((t) => t.dataset.participant === id)) this.unmeter(id);
    }
  }

  /**
   * Measures participant id's sound for the active speaker.
   * @param {string} id @param {MediaStream} stream
   */
  meter(id, stream) {
    if (typeof AudioContext === 'undefined' || stream.getAudioTracks().length === 0) return;
    this.unmeter(id);
    if (!this.ctx) this.ctx = new AudioContext();
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    const source = this.ctx.createMediaStreamSource(stream);
    const analyser = this.ctx.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser); // not to the destination: the tile's <audio> plays it
    this.meters.set(id, { analyser, source, buf: new Float32Array(analyser.fftSize) });
    if (!this.timer) this.timer = setInterval(() => this.listen(), 300);
  }

  /** @private @param {string} id */
  unmeter(id) {
    const m = this.meters.get(id);
    if (!m) return;
    m.source.disconnect();
    this.meters.delete(id);
  }

  /** @private Highlights the loudest participant above SPEAKING_LEVEL; keeps the last one through pauses. */
  listen() {
    let best = '';
    let level = SPEAKING_LEVEL;
    for (const [id, m] of this.meters) {
      m.analyser.getFloatTimeDomainData(m.buf);
      let sum = 0;
      for (const x of m.buf) sum += x * x;
      const rms = Math.sqrt(sum / m.buf.length);
      if (rms > level) {
        level = rms;
        best = id;
      }
    }
    if (!best || best === this.speaker) return;
    this.speaker = best;
    for (const t of this.tiles()) t.classList.toggle('speaking', t.dataset.participant === best);
    const tile = this.tiles().find((t) => t.dataset.participant === best);
    if (this.o.announce && tile) this.o.announce.textContent = GRID_TEXT.speaking(tile.dataset.name || '');
  }

  stop() {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const id of [...this.meters.keys()]) this.unmeter(id);
    this.observer.disconnect();
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
  }
}
