// OpenVisit signaling and WebRTC client, shared by every page that joins a
// visit (patient, provider, admin). It speaks the protocol of sfu/PROTOCOL.md:
//
//   join {token, visit} → joined → one client offer → server answer, then
//   the server offers and this client answers each one; ICE candidates
//   trickle both ways.
//
// Lifecycle: new → start() once → (connecting → connected ⇄ reconnecting) →
// closed | failed. A client cannot be restarted; make a new one (with a new
// join token — tokens are single use).
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
 * - `closed`             {@link ClosedDetail}, the socket closed (1000 after leave())
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
    /** @private */ this.muted = false;
    /** @private */ this.cameraOff = false;
    /** @private */ this.leaving = false;
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
    this.local = localStream;
    this.setState('connecting');
    const url = wsURL(this.opts.url);
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (err) {
        this.fail('ws_open', 'The connection could not be opened.');
        reject(err);
        return;
      }
      this.ws = ws;
      ws.addEventListener('open', () => {
        this.send({ type: 'join', token: this.opts.token, visit: this.opts.visit });
        this.emitState();
        resolve();
      });
      ws.addEventListener('message', (ev) => this.enqueue(ev.data));
      ws.addEventListener('close', (ev) => {
        this.onSocketClosed(ev.code, ev.reason);
        reject(new Error('VisitClient: socket closed'));
      });
      ws.addEventListener('error', () => {
        // The close event follows with the details.
        this.emitState();
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
   * Leaves the visit: tells the server, closes the peer connection and the
   * socket. Local tracks are left to the caller (it owns the stream).
   */
  leave() {
    if (this.state === 'closed') return;
    this.leaving = true;
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

  /** @private @param {unknown} data */
  enqueue(data) {
    this.chain = this.chain
      .then(() => this.handle(data))
      .catch((err) => {
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
    for (const p of msg.participants || []) this.onParticipantJoined(p);

    const pc = new RTCPeerConnection({
      iceServers: iceServers(this.opts.iceServers),
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    this.pc = pc;
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
      switch (pc.connectionState) {
        case 'connected':
          this.setState('connected');
          break;
        case 'disconnected':
          if (this.state === 'connected') this.setState('reconnecting');
          else this.emitState();
          break;
        case 'failed':
          this.fail('ice_failed', 'The media connection failed. Check your network and join again.');
          break;
        default:
          this.emitState();
      }
    });

    if (this.local) {
      for (const track of this.local.getTracks()) pc.addTrack(track, this.local);
      this.setMuted(this.muted);
      this.setCameraOff(this.cameraOff);
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.send({ type: 'offer', sdp: pc.localDescription ? pc.localDescription.sdp : offer.sdp });
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
    this.closePeer();
    this.emit('closed', { code, reason: reason || '' });
    if (this.state === 'failed' || this.state === 'closed') {
      this.emitState();
      return;
    }
    // A normal close the client did not ask for is the server ending the
    // visit; anything else is a failure the page must show.
    if (code === 1000 || this.leaving) this.setState('closed');
    else this.setState('failed');
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
