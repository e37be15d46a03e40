// OpenVisit's media client, shared by every page that joins a visit
// (patient, provider, admin): VisitClient joins one visit and keeps it
// joined. The protocol itself (socket, offers and answers, candidates,
// participants, simulcast layers) is MediaSession's, in media-session.js;
// this file adds staying connected.
//
// Lifecycle: new → start() once → (connecting → connected ⇄ reconnecting) →
// closed | failed. A client cannot be restarted; make a new one (with a new
// join token — tokens are single use).
//
// Reconnection: given opts.getGrant, a client whose socket drops (any close
// code but 1000, 4000, 4009, 4010, 4013), whose ICE fails or stays disconnected for
// 2 s, or whose network changes under a dead path, rejoins: a fresh grant
// (whose ws_url may name another media node), a new socket and a new peer
// connection republishing the current local tracks. The protocol has no
// client-side ICE restart (only the server offers after the first offer), so
// a rejoin is the restart. State is `reconnecting` meanwhile; attempts back
// off exponentially and stop after 60 s (state `failed`). Each attempt that
// got as far as ICE and did not connect fires `icefailed` with what it tried
// (direct UDP, TCP, the relay; ice-report.js), so that the page can say so
// instead of "reconnecting" about a call that never connected.
//
// Nothing here logs SDP, tokens or anything else a patient could be
// identified by; only states and stable error codes.

import { iceReport, transportBytes } from './ice-report.js';
import { MediaSession } from './media-session.js';

export { wsURL } from './media-session.js';
export { iceReport } from './ice-report.js';

/**
 * @typedef {import('./media-session.js').ClientState} ClientState
 * @typedef {import('./media-session.js').Participant} Participant
 * @typedef {import('./media-session.js').StateDetail} StateDetail
 * @typedef {import('./media-session.js').ParticipantDetail} ParticipantDetail
 * @typedef {import('./media-session.js').TrackDetail} TrackDetail
 * @typedef {import('./media-session.js').ErrorDetail} ErrorDetail
 * @typedef {import('./media-session.js').ClosedDetail} ClosedDetail
 * @typedef {import('./ice-report.js').IceReport} IceReport
 *
 * @typedef {object} Grant a join grant, as POST /api/v1/visits/:id/join answers it
 * @property {string} token
 * @property {string} ws_url
 * @property {RTCIceServer[]|string[]} [ice_servers]
 *
 * @typedef {import('./media-session.js').SessionOptions & {getGrant?: () => Promise<Grant>}} ClientOptions
 *   getGrant fetches a fresh join grant (POST /api/v1/visits/:id/join); it enables reconnection. An error it
 *   throws with `fatal: true` (and `code`, `message`; `ended: true` when the visit is over) stops
 *   reconnecting at once; any other error is retried.
 *
 * @typedef {{report: IceReport|null, failures: number, wasConnected: boolean}} IceFailedDetail
 */

/**
 * Close codes after which the client does not rejoin: normal (leave, visit
 * ended), a protocol error or an offer with too many tracks (rejoining would
 * repeat it), superseded by a newer socket of the same participant
 * (`duplicate`), removed. After `rate_limited` (4029) it rejoins, backing off.
 */
const FINAL_CLOSE = new Set([1000, 4000, 4009, 4010, 4013]);
/** How often the ICE report is refreshed while a connection is being made (ms). */
const ICE_WATCH_EVERY = 1000;
/** ICE may stay `disconnected` this long before the client rejoins (ms). */
const DISCONNECTED_GRACE = 2000;
/** An attempt (the first join or a rejoin) that has not connected after this long is retried (ms). */
const ATTEMPT_TIMEOUT = 10_000;
/** Reconnection gives up after this long without a connection (ms). */
const RECONNECT_LIMIT = 60_000;
const BACKOFF_FIRST = 250;
const BACKOFF_MAX = 8000;

/**
 * VisitClient joins one visit on one SFU node.
 *
 * Events (all CustomEvent; the payload is in `event.detail`):
 * - `state`              {@link StateDetail}, on every change of state, peer connection or socket
 * - `joined`             {self: Participant, participants: Participant[]}
 * - `participantjoined`  {@link ParticipantDetail} (also fired for those already in the room)
 * - `participantleft`    {@link ParticipantDetail}
 * - `track`              {@link TrackDetail}, a remote track; `participant` is `event.streams[0].id`
 * - `error`              {@link ErrorDetail}, from the server or the client (`code` is stable)
 * - `icefailed`          {@link IceFailedDetail}: a media connection attempt failed (ICE failed, the
 *                        node closed the socket before media connected, or a rejoin did not connect in
 *                        time); `report` says what was tried. Reconnection (if any) continues.
 * - `closed`             {@link ClosedDetail}, the socket closed for good (1000 after leave()); not
 *                        fired for a socket dropped and replaced by a rejoin
 */
export class VisitClient extends MediaSession {
  /** @param {ClientOptions} opts */
  constructor(opts) {
    super(opts);
    /** @private fetches a fresh join grant; without it the client does not reconnect */ this.getGrant = opts.getGrant;
    // ---- reconnection (see the file comment)
    /** @private Date.now() when the current outage began; 0 while connected */ this.outageSince = 0;
    /** @private rejoin attempts in the current outage */ this.attempt = 0;
    /** @private a rejoin is fetching its grant */ this.rejoining = false;
    /** @private @type {ReturnType<typeof setTimeout>|undefined} */ this.retryTimer = undefined;
    /** @private @type {ReturnType<typeof setTimeout>|undefined} */ this.iceTimer = undefined;
    /** @private @type {ReturnType<typeof setTimeout>|undefined} */ this.attemptTimer = undefined;
    /** @private @type {ReturnType<typeof setTimeout>|undefined} */ this.probeTimer = undefined;
    /** @private */ this.onNetwork = () => this.networkChanged();
    /** @type {number} completed rejoins (diagnostics and tests) */ this.reconnects = 0;
    /** @type {IceReport|null} what the current (or last) connection attempt tried */ this.ice = null;
    /** @type {number} connection attempts that failed since the last connection */ this.iceFailures = 0;
    /** @type {boolean} media connected at least once */ this.everConnected = false;
    /** @private @type {ReturnType<typeof setInterval>|undefined} */ this.iceWatch = undefined;
  }

  /**
   * Opens the socket and joins. Resolves once the join message is sent;
   * progress is reported through events.
   * @param {MediaStream|null} localStream mic+camera to publish (may be null to only receive)
   * @returns {Promise<void>}
   */
  start(localStream) {
    if (this.state !== 'new') {
      return Promise.reject(new Error('VisitClient: start() called twice'));
    }
    // The client's own stream of what it sends: replaceTrack() swaps tracks
    // in it, and a rejoin republishes it. The tracks stay the caller's.
    this.local = localStream ? new MediaStream(localStream.getTracks()) : null;
    this.setState('connecting');
    this.watchNetwork(true);
    this.armAttemptTimer();
    return this.openSocket(this.opts.url, this.opts.token);
  }

  /**
   * Rejoins now with a fresh grant (see the file comment); a no-op without
   * opts.getGrant or once closed. Pages call it on their own signals of a
   * dead connection; the client calls it itself on the usual ones.
   * @param {string} [why] for the log
   */
  reconnect(why) {
    if (!this.canReconnect()) return;
    const first = !this.outageSince;
    if (first) {
      this.outageSince = Date.now();
      this.attempt = 0;
      if (why) console.info('openvisit: reconnecting:', why);
    }
    if (this.state !== 'reconnecting') this.setState('reconnecting');
    this.scheduleRejoin(first ? 0 : backoff(this.attempt));
  }

  /**
   * Test hook: closes the media socket abruptly (code 3001, no `leave`), as
   * a network cut or a dying media node would.
   */
  _dropSocket() {
    if (this.ws && this.ws.readyState < WebSocket.CLOSING) this.ws.close(3001, 'test drop');
  }

  // ---- the session's hooks -----------------------------------------------

  /** @protected */
  openFailed() {
    if (this.outageSince) this.reconnect();
    else super.openFailed();
  }

  /** @protected @param {RTCPeerConnection} pc */
  watchPeer(pc) {
    this.watchIce(pc);
    pc.addEventListener('connectionstatechange', () => {
      if (pc !== this.pc) return; // replaced by a rejoin
      switch (pc.connectionState) {
        case 'connected':
          this.connectedAgain();
          this.everConnected = true;
          this.iceFailures = 0;
          this.setState('connected');
          break;
        case 'disconnected':
          // ICE may come back by itself; if not within the grace, rejoin.
          this.armIceTimer();
          if (this.state === 'connected') this.setState('reconnecting');
          else this.emitState();
          break;
        case 'failed':
          this.onIceFailed(pc);
          break;
        default:
          this.emitState();
      }
    });
  }

  /** @protected @param {number} code @param {string} reason */
  onSocketClosed(code, reason) {
    // 1001 before media connected: the node gave up on this connection's
    // ICE (or is going down); either way the attempt failed.
    if (code === 1001 && this.pc && this.pc.connectionState !== 'connected' && this.pc.remoteDescription) {
      this.noteIceFailure(this.ice);
    }
    if (!FINAL_CLOSE.has(code) && this.canReconnect()) {
      this.reconnect('socket closed ' + code);
      return;
    }
    super.onSocketClosed(code, reason);
  }

  // ---- reconnection ------------------------------------------------------

  /** @private */
  canReconnect() {
    return typeof this.getGrant === 'function' && !this.leaving
      && this.state !== 'new' && this.state !== 'closed' && this.state !== 'failed';
  }

  /** @private @param {number} delay ms */
  scheduleRejoin(delay) {
    if (this.retryTimer !== undefined || this.rejoining) return;
    if (Date.now() + delay - this.outageSince > RECONNECT_LIMIT) {
      this.giveUp('reconnect_failed', 'The connection was lost and could not be restored. Check your network, then join again.', false);
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.rejoin();
    }, delay);
  }

  /** One rejoin attempt: drop the old connection, fetch a grant, open a socket. @private */
  async rejoin() {
    if (!this.canReconnect() || !this.getGrant) return;
    this.attempt++;
    this.detach();
    this.rejoining = true;
    /** @type {Grant} */
    let grant;
    try {
      grant = await this.getGrant();
    } catch (err) {
      this.rejoining = false;
      const e = /** @type {any} */ (err) || {};
      if (e.fatal) {
        this.giveUp(String(e.code || 'rejoin_refused'), String(e.message || 'The visit cannot be joined again.'), !!e.ended);
      } else {
        this.reconnect();
      }
      return;
    }
    this.rejoining = false;
    if (!this.canReconnect()) return;
    if (!grant || !grant.token || !grant.ws_url) {
      this.reconnect();
      return;
    }
    // Always the fresh grant's node: the visit may have moved off a dead one.
    this.opts = { ...this.opts, url: grant.ws_url, token: grant.token, iceServers: grant.ice_servers || this.opts.iceServers };
    clearTimeout(this.attemptTimer);
    this.armAttemptTimer();
    this.openSocket(grant.ws_url, grant.token).catch(() => {});
  }

  /**
   * Drops the current socket and peer connection without `leave`, and
   * their timers. The participants stay known until the next `joined` says
   * who is still there.
   * @private
   */
  detach() {
    clearTimeout(this.iceTimer);
    this.iceTimer = undefined;
    clearInterval(this.iceWatch);
    this.iceWatch = undefined;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.dropConnection();
  }

  /**
   * An attempt (the first join, or a rejoin) that has not connected after
   * ATTEMPT_TIMEOUT is retried; when its peer connection got as far as ICE,
   * that is a failed connection attempt, reported as such.
   * @private
   */
  armAttemptTimer() {
    if (!this.getGrant) return;
    clearTimeout(this.attemptTimer);
    this.attemptTimer = setTimeout(() => {
      this.attemptTimer = undefined;
      if (this.state !== 'reconnecting' && this.state !== 'connecting') return;
      const pc = this.pc;
      if (pc && pc.remoteDescription && pc.connectionState !== 'connected') this.noteIceFailure(this.ice);
      this.reconnect('not connected in time');
    }, ATTEMPT_TIMEOUT);
  }

  /**
   * The peer connection failed (ICE, or DTLS over it): say what it tried,
   * then rejoin, or fail without reconnection.
   * @private @param {RTCPeerConnection} pc
   */
  async onIceFailed(pc) {
    const report = await iceReport(pc, this.opts.iceServers);
    if (pc !== this.pc) return; // replaced meanwhile
    this.noteIceFailure(report || this.ice);
    if (this.canReconnect()) this.reconnect('ice_failed');
    else this.fail('ice_failed', 'The video connection could not be made. Check your network and join again.');
  }

  /** @private @param {IceReport|null} report */
  noteIceFailure(report) {
    this.iceFailures++;
    if (report) this.ice = report;
    /** @type {IceFailedDetail} */
    const detail = { report: this.ice, failures: this.iceFailures, wasConnected: this.everConnected };
    this.emit('icefailed', detail);
  }

  /**
   * Keeps this.ice current while pc is connecting, so that a failure seen
   * after pc is gone (the node closed the socket) still says what was
   * tried. Stops once pc connects or is replaced.
   * @private @param {RTCPeerConnection} pc
   */
  watchIce(pc) {
    clearInterval(this.iceWatch);
    this.ice = null;
    const tick = async () => {
      if (pc !== this.pc || pc.connectionState === 'connected' || pc.connectionState === 'closed') {
        clearInterval(this.iceWatch);
        return;
      }
      const r = await iceReport(pc, this.opts.iceServers);
      if (r && pc === this.pc) this.ice = r;
    };
    this.iceWatch = setInterval(tick, ICE_WATCH_EVERY);
  }

  /** The peer connection is up: the outage (if any) is over. @private */
  connectedAgain() {
    clearTimeout(this.iceTimer);
    this.iceTimer = undefined;
    clearTimeout(this.attemptTimer);
    this.attemptTimer = undefined;
    if (this.outageSince) {
      this.reconnects++;
      this.outageSince = 0;
      this.attempt = 0;
    }
  }

  /** @private */
  armIceTimer() {
    if (this.iceTimer !== undefined || !this.getGrant) return;
    const pc = this.pc;
    this.iceTimer = setTimeout(() => {
      this.iceTimer = undefined;
      if (pc && pc === this.pc && pc.connectionState !== 'connected') this.reconnect('ice disconnected');
    }, DISCONNECTED_GRACE);
  }

  /**
   * Stops reconnecting: the error, state failed (or closed when the visit
   * ended meanwhile), and a final `closed` event for the page.
   * @private @param {string} code @param {string} message @param {boolean} ended
   */
  giveUp(code, message, ended) {
    this.stopReconnecting();
    this.detach();
    this.emit('error', { code, message });
    this.emit('closed', { code: ended ? 1000 : 1006, reason: code });
    this.setState(ended ? 'closed' : 'failed');
  }

  /** @protected */
  stopReconnecting() {
    clearInterval(this.iceWatch);
    this.iceWatch = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearTimeout(this.iceTimer);
    this.iceTimer = undefined;
    clearTimeout(this.attemptTimer);
    this.attemptTimer = undefined;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.watchNetwork(false);
  }

  /** @private @param {boolean} on */
  watchNetwork(on) {
    if (typeof window === 'undefined') return;
    const conn = /** @type {any} */ (navigator).connection;
    if (on) {
      window.addEventListener('online', this.onNetwork);
      if (conn && conn.addEventListener) conn.addEventListener('change', this.onNetwork);
    } else {
      window.removeEventListener('online', this.onNetwork);
      if (conn && conn.removeEventListener) conn.removeEventListener('change', this.onNetwork);
    }
  }

  /**
   * The network changed (back online, another interface). A broken socket
   * or peer connection rejoins at once; one that still looks connected is
   * probed: if nothing arrives on the transport for 2 s, the old path died
   * with the old network and the client rejoins.
   * @private
   */
  networkChanged() {
    if (!this.canReconnect() || !navigator.onLine) return;
    if (this.state === 'reconnecting') {
      // Already at it: try now rather than after the backoff.
      if (this.retryTimer !== undefined) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.scheduleRejoin(0);
      }
      return;
    }
    const pc = this.pc;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !pc || pc.connectionState !== 'connected') {
      this.reconnect('network change');
      return;
    }
    clearTimeout(this.probeTimer);
    transportBytes(pc).then((before) => {
      this.probeTimer = setTimeout(async () => {
        this.probeTimer = undefined;
        if (pc !== this.pc) return;
        if ((await transportBytes(pc)) <= before) this.reconnect('network change, nothing received');
      }, DISCONNECTED_GRACE);
    });
  }
}

/**
 * The delay before rejoin attempt n+1 (n ≥ 1): exponential with jitter.
 * @param {number} n
 * @returns {number} ms
 */
function backoff(n) {
  const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** Math.max(0, n - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
