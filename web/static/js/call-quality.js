// The call page's network-quality indicator: every 2 s, the peer
// connection's stats graded good / fair / poor, for this page's own uplink
// ("Network") and for what arrives from each other participant
// ("Connection"), with the numbers in the tooltip.

import { t } from './i18n.js';

/**
 * @typedef {{grade: string, loss: number, jitter: number, rtt: number, bitrate: number}} Quality
 *
 * @typedef {object} QualityOptions
 * @property {() => import('./client.js').VisitClient|null} client
 * @property {HTMLElement} self  this page's indicator
 * @property {import('./call-tiles.js').Tiles} tiles  the others' indicators
 * @property {Record<string, Quality>} quality  filled by participant ID, "self" for this page (a test hook)
 */

const EVERY_MS = 2000;

/**
 * Grades a connection from packet loss (0..1), jitter and round-trip time
 * (seconds) and the available outgoing bitrate (bit/s, 0 = unknown).
 * @param {{loss: number, jitter: number, rtt: number, bitrate: number}} m
 */
export function grade(m) {
  if (m.loss > 0.08 || m.jitter > 0.1 || m.rtt > 0.5 || (m.bitrate > 0 && m.bitrate < 150_000)) return 'poor';
  if (m.loss > 0.02 || m.jitter > 0.04 || m.rtt > 0.25 || (m.bitrate > 0 && m.bitrate < 500_000)) return 'fair';
  return 'good';
}

/** @param {HTMLElement} el @param {string} who @param {Quality} q */
function showQuality(el, who, q) {
  const words = { good: 'call.quality.good', fair: 'call.quality.fair', poor: 'call.quality.poor' };
  el.hidden = false;
  el.dataset.quality = q.grade;
  el.textContent = `${t(who)}: ${t(words[/** @type {'good'|'fair'|'poor'} */ (q.grade)])}`;
  const parts = [`packet loss ${(q.loss * 100).toFixed(1)} %`, `jitter ${Math.round(q.jitter * 1000)} ms`];
  if (q.rtt) parts.push(`round trip ${Math.round(q.rtt * 1000)} ms`);
  if (q.bitrate) parts.push(`upload ${Math.round(q.bitrate / 1000)} kbit/s`);
  el.title = parts.join(', ');
}

/** Measures and shows the quality while started. */
export class QualityMonitor {
  /** @param {QualityOptions} o */
  constructor(o) {
    /** @private */ this.o = o;
    /** @private @type {ReturnType<typeof setInterval>|undefined} */ this.timer = undefined;
    /** @private @type {Map<string, {lost: number, received: number}>} previous counters by inbound-rtp id */
    this.lastCounters = new Map();
    /** @private @type {Map<string, string>} remote track ID → participant ID */
    this.trackOwner = new Map();
  }

  /** Remembers whose a remote track is. @param {string} trackId @param {string} participant */
  owner(trackId, participant) {
    this.trackOwner.set(trackId, participant);
  }

  start() {
    this.timer = setInterval(() => this.update(), EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** @private */
  async update() {
    const c = this.o.client();
    if (!c || !c.pc || c.state !== 'connected') {
      this.o.self.hidden = true;
      for (const t of this.o.tiles.byId.values()) t.quality.hidden = true;
      return;
    }
    /** @type {any} */
    let report;
    try {
      report = await c.getStats();
    } catch {
      return;
    }
    const m = this.measure(report);
    const self = { loss: m.upLoss, jitter: m.upJitter, rtt: m.rtt, bitrate: m.bitrate, grade: '' };
    self.grade = grade(self);
    this.o.quality.self = self;
    showQuality(this.o.self, 'call.quality.network', self);
    for (const [id, t] of this.o.tiles.byId) {
      const p = m.per.get(id);
      if (!p) continue;
      // Their media reaches us through their uplink and our downlink: the
      // round trip is ours, the loss and jitter are what arrives.
      const q = { loss: p.loss, jitter: p.jitter, rtt: m.rtt, bitrate: 0, grade: '' };
      q.grade = grade(q);
      this.o.quality[id] = q;
      showQuality(t.quality, 'call.quality.connection', q);
    }
  }

  /**
   * The numbers of one stats report: round trip and available bitrate of
   * the nominated pair, the loss and jitter the server reports for what we
   * send, and per participant the loss (since the last report) and jitter
   * of what arrives from them.
   * @private @param {any} report
   */
  measure(report) {
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
        const owner = this.trackOwner.get(s.trackIdentifier);
        if (!owner) return;
        const prev = this.lastCounters.get(s.id) || { lost: 0, received: 0 };
        const lost = Math.max(0, (s.packetsLost || 0) - prev.lost);
        const recv = Math.max(0, (s.packetsReceived || 0) - prev.received);
        this.lastCounters.set(s.id, { lost: s.packetsLost || 0, received: s.packetsReceived || 0 });
        const q = per.get(owner) || { loss: 0, jitter: 0 };
        q.loss = Math.max(q.loss, lost + recv > 0 ? lost / (lost + recv) : 0);
        q.jitter = Math.max(q.jitter, s.jitter || 0);
        per.set(owner, q);
      }
    });
    return { rtt, bitrate, upLoss, upJitter, per };
  }
}
