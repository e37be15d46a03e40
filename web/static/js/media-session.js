// One visit's session with one media node: a WebSocket and a peer
// connection speaking the protocol of sfu/PROTOCOL.md:
//
//   join {token, visit} → joined → one client offer → server answer, then
//   the server offers and this client answers each one; ICE candidates
//   trickle both ways. The server may ask it to pause the simulcast
//   layers of its camera that nobody watches (`layers`).
//
// Lifecycle: new → connecting → connected → closed | failed. Staying
// connected (rejoining after a dropped socket or a failed ICE, and saying
// what a failed attempt tried) is VisitClient's, in client.js, which
// extends this class and overrides its hooks (watchPeer, openFailed,
// onSocketClosed, stopReconnecting).
//
// Nothing here logs SDP, tokens or anything else a patient could be
// identified by; only states and stable error codes.

import { iceServers } from './ice-report.js';
import { PREFERRED_VIDEO, SIMULCAST, preferCodec, setPausedLayers } from './simulcast.js';

/**
 * @typedef {'new'|'connecting'|'connected'|'reconnecting'|'failed'|'closed'} ClientState
 *
 * @typedef {{id: string, role: string}} Participant
 *
 * @typedef {object} SessionOptions
 * @property {string} url         WebSocket URL of the media node (wss://…/sfu/ws); a relative or https URL is resolved against the page.
 * @property {string} token       signed join token (single use)
 * @property {string} visit       visit ID the page expects
 * @property {RTCIceServer[]|string[]} [iceServers] ICE servers (from the redeem/join-token response)
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] 'all' (the default) or 'relay': use relayed (TURN)
 *   candidates only, as a browser behind a network that only reaches the media node through the relay would.
 *
 * @typedef {{state: ClientState, connectionState: RTCPeerConnectionState|'none', wsState: string}} StateDetail
 * @typedef {{participant: Participant}} ParticipantDetail
 * @typedef {{participant: string, stream: MediaStream, track: MediaStreamTrack}} TrackDetail
 * @typedef {{code: string, message: string}} ErrorDetail
 * @typedef {{code: number, reason: string}} ClosedDetail
 */

const WS_STATES = ['connecting', 'open', 'closing', 'closed'];

/** Largest message the server accepts (PROTOCOL.md). */
const MAX_MESSAGE = 64 * 1024;

/** A `layers` message whose setParameters failed is applied again this many times, after this long (ms). */
const LAYERS_RETRIES = 3;
const LAYERS_RETRY_DELAY = 500;

/**
 * MediaSession is the protocol half of VisitClient (see its events there).
 * @abstract
 */
export class MediaSession extends EventTarget {
  /** @param {SessionOptions} opts */
  constructor(opts) {
    super();
    if (!opts || !opts.url || !opts.token || !opts.visit) {
      throw new TypeError('VisitClient: url, token and visit are required');
    }
    /** @protected @type {SessionOptions} */ this.opts = opts;
    /** @type {ClientState} */ this.state = 'new';
    /** @type {Participant|null} */ this.self = null;
    /** @type {Map<string, Participant>} the other participants in the room */
    this.participants = new Map();
    /** @type {RTCPeerConnection|null} */ this.pc = null;
    /** @type {WebSocket|null} */ this.ws = null;
    /** @protected @type {MediaStream|null} */ this.local = null;
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
    /** @protected */ this.leaving = false;
  }

  /**
   * Opens a socket to url and joins with token. Events of a socket that is
   * no longer this.ws (replaced by a rejoin) are ignored.
   * @protected @param {string} u @param {string} token @returns {Promise<void>}
   */
  openSocket(u, token) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(wsURL(u));
      } catch (err) {
        this.openFailed();
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

  // ---- hooks (VisitClient overrides them) ------------------------------------

  /** The socket could not even be opened. @protected */
  openFailed() {
    this.fail('ws_open', 'The connection could not be opened.');
  }

  /**
   * Follows a new peer connection's state. VisitClient also watches its
   * ICE and rejoins when it fails.
   * @protected @param {RTCPeerConnection} pc
   */
  watchPeer(pc) {
    pc.addEventListener('connectionstatechange', () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'connected') this.setState('connected');
      else this.emitState();
    });
  }

  /** Stops whatever keeps the session alive: nothing here; VisitClient's reconnection. @protected */
  stopReconnecting() {}

  /**
   * The socket closed (and was not replaced): the session is over.
   * VisitClient rejoins instead when it can.
   * @protected @param {number} code @param {string} reason
   */
  onSocketClosed(code, reason) {
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
    this.watchPeer(pc);
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

  /**
   * Drops the current socket and peer connection without `leave`; their
   * events are ignored from now on.
   * @protected
   */
  dropConnection() {
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

  // ---- helpers -----------------------------------------------------------

  /** @protected @param {object} msg */
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

  /** @protected @param {string} code @param {string} message */
  fail(code, message) {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.stopReconnecting();
    this.emit('error', { code, message });
    this.setState('failed');
    this.closePeer();
    if (this.ws && this.ws.readyState < WebSocket.CLOSING) this.ws.close(1000, 'failed');
  }

  /** @protected */
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

  /** @protected @param {ClientState} s */
  setState(s) {
    this.state = s;
    this.emitState();
  }

  /** @protected */
  emitState() {
    /** @type {StateDetail} */
    const detail = {
      state: this.state,
      connectionState: this.pc ? this.pc.connectionState : 'none',
      wsState: this.ws ? WS_STATES[this.ws.readyState] : 'none',
    };
    this.emit('state', detail);
  }

  /** @protected @param {string} type @param {object} detail */
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
