// OpenVisit signaling and WebRTC client, shared by every page that joins a
// visit (patient, provider, admin). It speaks the protocol of sfu/PROTOCOL.md:
//
//   join {token, visit} → joined → one client offer → server answer, then
//   the server offers and this client answers each one; ICE candidates
//   trickle both ways. The server may ask it to pause the simulcast
//   layers of its camera that nobody watches (`layers`).
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
// (direct UDP, TCP, the relay), so that the page can say so instead of
// "reconnecting" about a call that never connected.
//
// Nothing here logs SDP, tokens or anything else a patient could be
// identified by; only states and stable error codes.

/**
 * @typedef {'new'|'connecting'|'connected'|'reconnecting'|'failed'|'closed'} ClientState
 *
 * @typedef {{id: string, role: string}} Participant
 *
 * @typedef {object} ClientOptions
 * @property {string} url         WebSocket URL of the media node (wss://…/sfu/ws); a relative or https URL is resolved against the page.
 * @property {string} token       signed join token (single use)
 * @property {string} visit       visit ID the page expects
 * @property {RTCIceServer[]|string[]} [iceServers] ICE servers (from the redeem/join-token response)
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] 'all' (the default) or 'relay': use relayed (TURN)
 *   candidates only, as a browser behind a network that only reaches the media node through the relay would.
 * @property {() => Promise<Grant>} [getGrant] fetches a fresh join grant (POST /api/v1/visits/:id/join);
 *   enables reconnection. An error it throws with `fatal: true` (and `code`, `message`; `ended: true` when
 *   the visit is over) stops reconnecting at once; any other error is retried.
 *
 * @typedef {object} Grant a join grant, as POST /api/v1/visits/:id/join answers it
 * @property {string} token
 * @property {string} ws_url
 * @property {RTCIceServer[]|string[]} [ice_servers]
 *
 * @typedef {{state: ClientState, connectionState: RTCPeerConnectionState|'none', wsState: string}} StateDetail
 * @typedef {{participant: Participant}} ParticipantDetail
 * @typedef {{participant: string, stream: MediaStream, track: MediaStreamTrack}} TrackDetail
 * @typedef {{code: string, message: string}} ErrorDetail
 * @typedef {{code: number, reason: string}} ClosedDetail
 *
 * @typedef {object} IceReport what a connection attempt tried, from the peer connection's stats
 * @property {boolean} udp    candidate pairs to the media node over UDP were checked (a direct connection)
 * @property {boolean} tcp    candidate pairs over TCP (ICE-TCP) were checked
 * @property {'off'|'unreachable'|'tried'} relay  the grant's relay (TURN): none configured; configured but
 *   no relayed candidate could be allocated; or relayed pairs were checked
 * @property {{udp: number, tcp: number}} offered the media node's candidates, by protocol
 * @property {number} pairs     candidate pairs seen
 * @property {boolean} succeeded a pair succeeded (then the failure was after connecting)
 *
 * @typedef {{report: IceReport|null, failures: number, wasConnected: boolean}} IceFailedDetail
 */

const WS_STATES = ['connecting', 'open', 'closing', 'closed'];

/** Largest message the server accepts (PROTOCOL.md). */
const MAX_MESSAGE = 64 * 1024;

/**
 * Simulcast layers the camera is published in (PROTOCOL.md, "Simulcast"):
 * the SFU forwards to each subscriber the layer its bandwidth and the size
 * it shows the video at allow. RIDs q(uarter), h(alf), f(ull).
 * @type {RTCRtpEncodingParameters[]}
 */
const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

/** Video codec the SFU switches layers best with (it parses VP8 keyframes). */
const PREFERRED_VIDEO = 'video/VP8';

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
/** A `layers` message whose setParameters failed is applied again this many times, after this long (ms). */
const LAYERS_RETRIES = 3;
const LAYERS_RETRY_DELAY = 500;
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
export class VisitClient extends EventTarget {
  /** @param {ClientOptions} opts */
  constructor(opts) {
    super();
    if (!opts || !opts.url || !opts.token || !opts.visit) {
      throw new TypeError('VisitClient: url, token and visit are required');
    }
    /** @private */ this.opts = opts;
    /** @type {ClientState} */ this.state = 'new';
    /** @type {Participant|null} */ this.self = null;
    /** @type {Map<string, Participant>} the other participants in the room */
    this.participants = new Map();
    /** @type {RTCPeerConnection|null} */ this.pc = null;
    /** @type {WebSocket|null} */ this.ws = null;
    /** @private @type {MediaStream|null} */ this.local = null;
    /** @private @type {RTCIceCandidateInit[]} remote candidates waiting for a remote description */
    this.pendingCandidates = [];
    /** @private serialises signaling messages so that each is handled after the previous one */
    this.chain = Promise.resolve();
    /** @private serialises setParameters calls of `layers` messages (one at a time per sender) */
    this.layersChain = Promise.resolve();
    /** @private @type {Map<string, string[]>} the RIDs the SFU last asked to pause, by our m-section's mid */
    this.pausedLayers = new Map();
    /** @private */ this.muted = false;
    /** @private */ this.cameraOff = false;
    /** @private */ this.leaving = false;
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
   * Opens a socket to url and joins with token. Events of a socket that is
   * no longer this.ws (replaced by a rejoin) are ignored.
   * @private @param {string} u @param {string} token @returns {Promise<void>}
   */
  openSocket(u, token) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(wsURL(u));
      } catch (err) {
        if (this.outageSince) this.reconnect();
        else this.fail('ws_open', 'The connection could not be opened.');
        reject(err);
        return;
      }
      this.ws = ws;
      ws.addEventListener('open', () => {
        if (ws !== this.ws) return;
        this.send({ type: 'join', token, visit: this.opts.visit });
        this.emitState();
        resolve();
      });
      ws.addEventListener('message', (ev) => {
        if (ws === this.ws) this.enqueue(ev.data, ws);
      });
      ws.addEventListener('close', (ev) => {
        reject(new Error('VisitClient: socket closed'));
        if (ws === this.ws) this.onSocketClosed(ev.code, ev.reason);
      });
      ws.addEventListener('error', () => {
        // The close event follows with the details.
        if (ws === this.ws) this.emitState();
      });
    });
  }

  /**
   * Mutes or unmutes the microphone. The sender keeps running (silence), so
   * no renegotiation happens.
   * @param {boolean} muted
   */
  setMuted(muted) {
    this.muted = !!muted;
    for (const t of this.local ? this.local.getAudioTracks() : []) t.enabled = !this.muted;
  }

  /**
   * Turns the camera off (black frames) or back on, without renegotiation.
   * @param {boolean} off
   */
  setCameraOff(off) {
    this.cameraOff = !!off;
    for (const t of this.local ? this.local.getVideoTracks() : []) t.enabled = !this.cameraOff;
  }

  /** @returns {boolean} */
  isMuted() { return this.muted; }

  /** @returns {boolean} */
  isCameraOff() { return this.cameraOff; }

  /**
   * Sends `track` in place of the current track of its kind (a switched
   * camera or microphone, a shared screen) with RTCRtpSender.replaceTrack:
   * no renegotiation. A rejoin republishes it. The mute / camera-off state
   * applies to it. The caller owns both tracks (and stops the old one).
   * Resolves false when no sender of that kind is live (the track is then
   * sent from the next rejoin on).
   * @param {MediaStreamTrack} track
   * @returns {Promise<boolean>}
   */
  async replaceTrack(track) {
    const kind = track.kind;
    if (!this.local) this.local = new MediaStream();
    const old = this.local.getTracks().filter((t) => t.kind === kind);
    for (const t of old) this.local.removeTrack(t);
    this.local.addTrack(track);
    track.enabled = kind === 'audio' ? !this.muted : !this.cameraOff;
    const pc = this.pc;
    if (!pc || pc.signalingState === 'closed') return false;
    const sender = pc.getSenders().find((s) => s.track && old.includes(s.track))
      || pc.getSenders().find((s) => s.track && s.track.kind === kind);
    if (!sender) return false;
    await sender.replaceTrack(track);
    return true;
  }

  /**
   * The local track of this kind being sent (or to be sent).
   * @param {'audio'|'video'} kind
   * @returns {MediaStreamTrack|null}
   */
  sending(kind) {
    return (this.local && this.local.getTracks().find((t) => t.kind === kind)) || null;
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

  /**
   * Leaves the visit: tells the server, closes the peer connection and the
   * socket. Local tracks are left to the caller (it owns the stream).
   */
  leave() {
    if (this.state === 'closed') return;
    this.leaving = true;
    this.stopReconnecting();
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.send({ type: 'leave' });
    }
    this.closePeer();
    if (this.ws && this.ws.readyState < WebSocket.CLOSING) {
      this.ws.close(1000, 'leave');
    }
    this.setState('closed');
  }

  /**
   * Tells the SFU the size (CSS pixels × devicePixelRatio) at which a remote
   * video track is shown, so that it forwards the smallest simulcast layer
   * that looks sharp there; 0×0 means the track is not shown (the SFU stops
   * forwarding its video). Call it when a tile is laid out or resized.
   * @param {string} trackId  the remote track's id (MediaStreamTrack.id)
   * @param {number} width
   * @param {number} height
   */
  setVideoSize(trackId, width, height) {
    const clamp = (/** @type {number} */ v) => Math.max(0, Math.min(16384, Math.round(v) || 0));
    if (!trackId) return;
    this.send({ type: 'layer_hint', track: String(trackId), width: clamp(width), height: clamp(height) });
  }

  /**
   * RTCPeerConnection.getStats pass-through (an empty report before the peer
   * connection exists).
   * @param {MediaStreamTrack|null} [selector]
   * @returns {Promise<RTCStatsReport|Map<string, any>>}
   */
  getStats(selector) {
    if (!this.pc) return Promise.resolve(new Map());
    return this.pc.getStats(selector || null);
  }

  // ---- signaling ---------------------------------------------------------

  /** @private @param {unknown} data @param {WebSocket} [ws] the socket it came on */
  enqueue(data, ws) {
    this.chain = this.chain
      .then(() => (ws && ws !== this.ws ? undefined : this.handle(data)))
      .catch((err) => {
        if (ws && ws !== this.ws) return; // a step of a replaced connection
        console.warn('openvisit: signaling step failed:', err instanceof Error ? err.name : 'error');
        this.fail('client_error', 'The call could not be set up.');
      });
  }

  /** @private @param {unknown} data */
  async handle(data) {
    if (typeof data !== 'string') return;
    /** @type {any} */
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn('openvisit: ignoring a message that is not JSON');
      return;
    }
    switch (msg.type) {
      case 'joined':
        return this.onJoined(msg);
      case 'answer':
        if (!this.pc) return;
        await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        await this.flushCandidates();
        return;
      case 'offer':
        return this.onOffer(msg.sdp);
      case 'candidate':
        return this.onCandidate(msg.candidate);
      case 'participant_joined':
        return this.onParticipantJoined(msg.participant);
      case 'participant_left':
        return this.onParticipantLeft(msg.participant);
      case 'layers':
        this.onLayers(msg);
        return;
      case 'error':
        this.emit('error', { code: String(msg.code || 'unknown'), message: String(msg.message || '') });
        return;
      default:
        console.warn('openvisit: ignoring an unknown message type');
    }
  }

  /** @private @param {{self: Participant, participants?: Participant[]}} msg */
  async onJoined(msg) {
    if (this.pc) return;
    this.self = msg.self || null;
    this.emit('joined', { self: this.self, participants: msg.participants || [] });
    // After a rejoin: whoever left meanwhile is gone.
    const present = new Set((msg.participants || []).map((p) => p && p.id));
    for (const p of [...this.participants.values()]) if (!present.has(p.id)) this.onParticipantLeft(p);
    for (const p of msg.participants || []) this.onParticipantJoined(p);

    const pc = new RTCPeerConnection({
      iceServers: iceServers(this.opts.iceServers),
      iceTransportPolicy: this.opts.iceTransportPolicy === 'relay' ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    this.pc = pc;
    this.watchIce(pc);
    pc.addEventListener('icecandidate', (ev) => {
      // A null candidate (or an empty one) marks the end of gathering; the
      // protocol has no message for it.
      if (!ev.candidate || !ev.candidate.candidate) return;
      const c = ev.candidate.toJSON();
      /** @type {RTCIceCandidateInit} */
      const init = { candidate: c.candidate };
      if (c.sdpMid != null) init.sdpMid = c.sdpMid;
      if (c.sdpMLineIndex != null) init.sdpMLineIndex = c.sdpMLineIndex;
      if (c.usernameFragment != null) init.usernameFragment = c.usernameFragment;
      this.send({ type: 'candidate', candidate: init });
    });
    pc.addEventListener('track', (ev) => {
      const stream = ev.streams[0];
      if (!stream) {
        console.warn('openvisit: a remote track arrived without a stream');
        return;
      }
      this.emit('track', { participant: stream.id, stream, track: ev.track });
    });
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

    if (this.local) {
      for (const track of this.local.getTracks()) {
        if (track.kind !== 'video') {
          pc.addTrack(track, this.local);
          continue;
        }
        const tr = pc.addTransceiver(track, { streams: [this.local], sendEncodings: SIMULCAST });
        preferCodec(tr, PREFERRED_VIDEO);
      }
      this.setMuted(this.muted);
      this.setCameraOff(this.cameraOff);
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.send({ type: 'offer', sdp: pc.localDescription ? pc.localDescription.sdp : offer.sdp });
  }

  /**
   * `layers`: the SFU names the simulcast layers (RIDs) of one of our
   * tracks that nobody watches; stop encoding and sending those, send the
   * others. The message carries the full state, so applying it twice is
   * harmless. Off the signaling chain: a failed setParameters must not end
   * the call (the layers just keep being sent).
   * @private @param {{mid?: unknown, paused?: unknown}} msg
   */
  onLayers(msg) {
    const pc = this.pc;
    if (!pc || typeof msg.mid !== 'string' || !Array.isArray(msg.paused)) return;
    this.pausedLayers.set(msg.mid, msg.paused.map(String));
    this.applyLayers(pc, msg.mid, LAYERS_RETRIES);
  }

  /**
   * Applies the latest paused set of mid on pc, after the setParameters
   * calls before it. A failure is retried: a layer the SFU resumed but the
   * browser still holds paused would look stopped by the browser itself,
   * and the SFU would not ask again.
   * @private @param {RTCPeerConnection} pc @param {string} mid @param {number} retries
   */
  applyLayers(pc, mid, retries) {
    this.layersChain = this.layersChain
      .then(() => (pc === this.pc ? setPausedLayers(pc, mid, this.pausedLayers.get(mid) || []) : undefined))
      .catch((err) => {
        console.warn('openvisit: could not pause or resume layers:', err instanceof Error ? err.name : 'error');
        if (retries > 0 && pc === this.pc) setTimeout(() => this.applyLayers(pc, mid, retries - 1), LAYERS_RETRY_DELAY);
      });
  }

  /** @private @param {string} sdp */
  async onOffer(sdp) {
    const pc = this.pc;
    if (!pc) return;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await this.flushCandidates();
    await pc.setLocalDescription();
    if (pc.localDescription) this.send({ type: 'answer', sdp: pc.localDescription.sdp });
  }

  /** @private @param {RTCIceCandidateInit} candidate */
  async onCandidate(candidate) {
    if (!candidate || !candidate.candidate) return;
    if (!this.pc || !this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    await this.addCandidate(candidate);
  }

  /** @private */
  async flushCandidates() {
    const list = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of list) await this.addCandidate(c);
  }

  /** @private @param {RTCIceCandidateInit} c */
  async addCandidate(c) {
    if (!this.pc) return;
    try {
      await this.pc.addIceCandidate(c);
    } catch (err) {
      // One bad candidate must not end the call; ICE fails on its own if none works.
      console.warn('openvisit: a remote ICE candidate was refused:', err instanceof Error ? err.name : 'error');
    }
  }

  /** @private @param {Participant} p */
  onParticipantJoined(p) {
    if (!p || !p.id || this.participants.has(p.id)) return;
    this.participants.set(p.id, p);
    this.emit('participantjoined', { participant: p });
  }

  /** @private @param {Participant} p */
  onParticipantLeft(p) {
    if (!p || !p.id) return;
    this.participants.delete(p.id);
    this.emit('participantleft', { participant: p });
  }

  /** @private @param {number} code @param {string} reason */
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
    this.closePeer();
    this.emit('closed', { code, reason: reason || '' });
    if (this.state === 'failed' || this.state === 'closed') {
      this.emitState();
      return;
    }
    // A normal close the client did not ask for is the server ending the
    // visit; anything else is a failure the page must show.
    // 4009: this participant joined again from another socket (another tab
    // or device): superseded, not a failure.
    if (code === 1000 || code === 4009 || this.leaving) this.setState('closed');
    else this.setState('failed');
  }

  // ---- reconnection ------------------------------------------------------

  /** @private */
  canReconnect() {
    return typeof this.opts.getGrant === 'function' && !this.leaving
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
    if (!this.canReconnect() || !this.opts.getGrant) return;
    this.attempt++;
    this.detach();
    this.rejoining = true;
    /** @type {Grant} */
    let grant;
    try {
      grant = await this.opts.getGrant();
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
   * Drops the current socket and peer connection without `leave`; their
   * events are ignored from now on. The participants stay known until the
   * next `joined` says who is still there.
   * @private
   */
  detach() {
    clearTimeout(this.iceTimer);
    this.iceTimer = undefined;
    clearInterval(this.iceWatch);
    this.iceWatch = undefined;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    const pc = this.pc;
    const ws = this.ws;
    this.pc = null;
    this.ws = null;
    this.pendingCandidates = [];
    this.chain = Promise.resolve(); // steps of the old connection may never settle
    // The new peer connection sends every layer until the SFU says otherwise.
    this.layersChain = Promise.resolve();
    this.pausedLayers = new Map();
    if (pc) {
      try {
        pc.close();
      } catch {
        // already closed
      }
    }
    if (ws && ws.readyState < WebSocket.CLOSING) ws.close(3000, 'reconnect');
  }

  /**
   * An attempt (the first join, or a rejoin) that has not connected after
   * ATTEMPT_TIMEOUT is retried; when its peer connection got as far as ICE,
   * that is a failed connection attempt, reported as such.
   * @private
   */
  armAttemptTimer() {
    if (!this.opts.getGrant) return;
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
    if (this.iceTimer !== undefined || !this.opts.getGrant) return;
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

  /** @private */
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

  // ---- helpers -----------------------------------------------------------

  /** @private @param {object} msg */
  send(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(msg);
    if (text.length > MAX_MESSAGE) {
      this.fail('client_error', 'A signaling message was too large.');
      return;
    }
    ws.send(text);
  }

  /** @private @param {string} code @param {string} message */
  fail(code, message) {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.stopReconnecting();
    this.emit('error', { code, message });
    this.setState('failed');
    this.closePeer();
    if (this.ws && this.ws.readyState < WebSocket.CLOSING) this.ws.close(1000, 'failed');
  }

  /** @private */
  closePeer() {
    if (!this.pc) return;
    const pc = this.pc;
    try {
      pc.close();
    } catch {
      // already closed
    }
    this.emitState();
  }

  /** @private @param {ClientState} s */
  setState(s) {
    this.state = s;
    this.emitState();
  }

  /** @private */
  emitState() {
    /** @type {StateDetail} */
    const detail = {
      state: this.state,
      connectionState: this.pc ? this.pc.connectionState : 'none',
      wsState: this.ws ? WS_STATES[this.ws.readyState] : 'none',
    };
    this.emit('state', detail);
  }

  /** @private @param {string} type @param {object} detail */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Resolves the media node URL against the page and makes it a WebSocket URL.
 * @param {string} u
 * @returns {string}
 */
export function wsURL(u) {
  const url = new URL(u, location.href);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  return url.href;
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

/**
 * What pc's ICE tried, from its stats and the ICE servers it was given:
 * direct UDP and TCP pairs to the media node, and the relay. null when the
 * stats cannot be read (pc closed).
 * @param {RTCPeerConnection} pc
 * @param {RTCIceServer[]|string[]|undefined} servers
 * @returns {Promise<IceReport|null>}
 */
export async function iceReport(pc, servers) {
  /** @type {Map<string, any>} */
  const stats = new Map();
  try {
    (await pc.getStats()).forEach((s) => stats.set(s.id, s));
  } catch {
    return null;
  }
  const relayConfigured = iceServers(servers).some((s) => [s.urls].flat().some((u) => /^turns?:/i.test(String(u))));
  /** @type {IceReport} */
  const r = { udp: false, tcp: false, relay: relayConfigured ? 'unreachable' : 'off', offered: { udp: 0, tcp: 0 }, pairs: 0, succeeded: false };
  let relayGathered = false;
  for (const s of stats.values()) {
    if (s.type === 'local-candidate' && s.candidateType === 'relay') relayGathered = true;
    if (s.type === 'remote-candidate' && (s.protocol === 'udp' || s.protocol === 'tcp')) r.offered[/** @type {'udp'|'tcp'} */ (s.protocol)]++;
    if (s.type !== 'candidate-pair') continue;
    const local = stats.get(s.localCandidateId);
    const remote = stats.get(s.remoteCandidateId);
    if (!local || !remote) continue;
    r.pairs++;
    if (s.state === 'succeeded') r.succeeded = true;
    if (local.candidateType === 'relay') r.relay = 'tried';
    else if (remote.protocol === 'tcp') r.tcp = true;
    else if (remote.protocol === 'udp') r.udp = true;
  }
  if (r.relay === 'unreachable' && relayGathered) r.relay = 'tried';
  return r;
}

/**
 * Bytes received on a peer connection's transports so far.
 * @param {RTCPeerConnection} pc
 * @returns {Promise<number>}
 */
async function transportBytes(pc) {
  let n = 0;
  try {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'transport') n += s.bytesReceived || 0;
    });
  } catch {
    // closed meanwhile
  }
  return n;
}

/**
 * Sets which simulcast encodings of the sender on m-section mid are sent:
 * every encoding with a RID not in paused (getParameters, then
 * setParameters with the same object, as the API requires). A mid that
 * is not one of our video senders (tracks come and go) is ignored. The
 * encodings belong to the sender, so they outlive replaceTrack.
 * @param {RTCPeerConnection} pc
 * @param {string} mid
 * @param {string[]} paused
 */
async function setPausedLayers(pc, mid, paused) {
  if (pc.signalingState === 'closed') return;
  const tr = pc.getTransceivers().find((t) => t.mid === mid);
  if (!tr || tr.receiver.track.kind !== 'video' || tr.currentDirection === 'stopped') return;
  const params = tr.sender.getParameters();
  if (!params.encodings || params.encodings.length < 2) return;
  let changed = false;
  for (const e of params.encodings) {
    const active = !e.rid || !paused.includes(e.rid);
    if (e.active !== active) {
      e.active = active;
      changed = true;
    }
  }
  if (changed) await tr.sender.setParameters(params);
}

/**
 * Puts mime first in the transceiver's codec preferences (where the browser
 * supports setting them); the others stay, in the browser's order.
 * @param {RTCRtpTransceiver} tr
 * @param {string} mime
 */
function preferCodec(tr, mime) {
  try {
    const caps = RTCRtpReceiver.getCapabilities('video');
    if (!caps || typeof tr.setCodecPreferences !== 'function') return;
    const want = mime.toLowerCase();
    const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === want);
    const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== want);
    if (first.length > 0) tr.setCodecPreferences([...first, ...rest]);
  } catch {
    // Not supported: the browser's own order applies.
  }
}

/**
 * Accepts ICE servers as RTCIceServer objects or plain URL strings.
 * @param {RTCIceServer[]|string[]|undefined} list
 * @returns {RTCIceServer[]}
 */
function iceServers(list) {
  if (!Array.isArray(list)) return [];
  return list
    .map((s) => (typeof s === 'string' ? { urls: s } : s))
    .filter((s) => s && s.urls);
}
