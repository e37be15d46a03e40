// What a connection attempt tried, from its peer connection's stats: the
// direct UDP and TCP candidate pairs to the media node, and the relay
// (TURN) of the join grant. VisitClient reports it with every failed
// attempt; call-ice.js puts it in words for the user.

/**
 * @typedef {object} IceReport what a connection attempt tried, from the peer connection's stats
 * @property {boolean} udp    candidate pairs to the media node over UDP were checked (a direct connection)
 * @property {boolean} tcp    candidate pairs over TCP (ICE-TCP) were checked
 * @property {'off'|'unreachable'|'tried'} relay  the grant's relay (TURN): none configured; configured but
 *   no relayed candidate could be allocated; or relayed pairs were checked
 * @property {{udp: number, tcp: number}} offered the media node's candidates, by protocol
 * @property {number} pairs     candidate pairs seen
 * @property {boolean} succeeded a pair succeeded (then the failure was after connecting)
 */

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
export async function transportBytes(pc) {
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
 * Accepts ICE servers as RTCIceServer objects or plain URL strings.
 * @param {RTCIceServer[]|string[]|undefined} list
 * @returns {RTCIceServer[]}
 */
export function iceServers(list) {
  if (!Array.isArray(list)) return [];
  return list
    .map((s) => (typeof s === 'string' ? { urls: s } : s))
    .filter((s) => s && s.urls);
}
