// How the camera is published: in three simulcast layers, VP8 first, and
// the layers the SFU says nobody watches paused (PROTOCOL.md,
// "Simulcast"). MediaSession applies these to its peer connection.

/**
 * Simulcast layers the camera is published in (PROTOCOL.md, "Simulcast"):
 * the SFU forwards to each subscriber the layer its bandwidth and the size
 * it shows the video at allow. RIDs q(uarter), h(alf), f(ull).
 * @type {RTCRtpEncodingParameters[]}
 */
export const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

/** Video codec the SFU switches layers best with (it parses VP8 keyframes). */
export const PREFERRED_VIDEO = 'video/VP8';

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
export async function setPausedLayers(pc, mid, paused) {
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
export function preferCodec(tr, mime) {
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
