// The device check's network check (join page): how quickly the server
// answers (round trip), how fast a download comes (throughput), and
// whether the browser reaches the visit's relay over TCP or TLS — the way
// video gets through when a network blocks UDP. It only advises: the
// patient may continue whatever it finds.

import { get } from './api.js';

/** Every patient-facing string of the network check, in one place (the message catalogue takes them from here). */
export const NETCHECK_STRINGS = {
  title: 'Network',
  checking: 'Checking your connection…',
  rtt: (/** @type {number} */ ms) => `Round trip to the visit server: ${ms} ms`,
  speed: (/** @type {number} */ mbps) => `Download speed: ${mbps.toFixed(1)} Mbit/s`,
  relayOk: 'Video can get through even if this network blocks it (relay over TCP reachable)',
  relayFailed: 'The backup route for video (relay over TCP) could not be reached',
  relayNone: 'No backup route for video is offered by this clinic',
  good: 'Your connection looks good for a video visit.',
  slow: 'Your connection is slow. Video may be blurry or freeze. Move closer to your Wi-Fi router, or close other apps and videos.',
  laggy: 'Your connection is slow to answer. There may be delays in the call. If you can, use a different network.',
  blocked: 'If your video does not connect, try another network, such as your phone\'s mobile data instead of this Wi-Fi.',
  failed: 'The connection check could not finish. You can still continue.',
};

/**
 * @typedef {object} NetResult
 * @property {number} rttMs      median of a few small requests
 * @property {number} mbps       download throughput
 * @property {'ok'|'failed'|'none'} relay  TCP/TLS relay reachability
 * @property {string[]} advice   plain sentences for the patient
 */

/** Median of a few round trips to the probe, in ms. @param {string} url */
async function roundTrip(url) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const r = await fetch(`${url}?bytes=0&n=${i}`, { cache: 'no-store', credentials: 'same-origin' });
    await r.arrayBuffer();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[2]);
}

/** Download throughput in Mbit/s. @param {string} url @param {number} bytes */
async function throughput(url, bytes) {
  const t0 = performance.now();
  const r = await fetch(`${url}?bytes=${bytes}`, { cache: 'no-store', credentials: 'same-origin' });
  const n = (await r.arrayBuffer()).byteLength;
  const s = Math.max((performance.now() - t0) / 1000, 0.001);
  return (n * 8) / s / 1e6;
}

/**
 * Whether a relay candidate is gathered with only the TCP/TLS relay URLs.
 * @param {RTCIceServer[]} servers @param {number} timeoutMs
 * @returns {Promise<'ok'|'failed'|'none'>}
 */
export async function relayReachable(servers, timeoutMs = 8000) {
  if (!servers || servers.length === 0) return 'none';
  const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: 'relay' });
  try {
    const found = new Promise((resolve) => {
      pc.addEventListener('icecandidate', (ev) => {
        if (ev.candidate && / typ relay /.test(ev.candidate.candidate)) resolve('ok');
        if (!ev.candidate) resolve('failed'); // gathering complete without a relay
      });
      setTimeout(() => resolve('failed'), timeoutMs);
    });
    pc.createDataChannel('netcheck');
    await pc.setLocalDescription(await pc.createOffer());
    return /** @type {'ok'|'failed'} */ (await found);
  } finally {
    pc.close();
  }
}

/** Runs the whole check for visit. @param {string} visit @returns {Promise<NetResult>} */
export async function checkNetwork(visit) {
  /** @type {{ice_servers: RTCIceServer[], probe_url: string, max_probe_bytes: number}} */
  const cfg = await get(`/api/v1/visits/${encodeURIComponent(visit)}/network-check`, { redirect401: false });
  const [rttMs, mbps, relay] = await Promise.all([
    roundTrip(cfg.probe_url),
    throughput(cfg.probe_url, cfg.max_probe_bytes),
    relayReachable(cfg.ice_servers),
  ]);
  const advice = [];
  if (mbps < 1.5) advice.push(NETCHECK_STRINGS.slow);
  if (rttMs > 400) advice.push(NETCHECK_STRINGS.laggy);
  if (relay === 'failed') advice.push(NETCHECK_STRINGS.blocked);
  if (advice.length === 0) advice.push(NETCHECK_STRINGS.good);
  return { rttMs, mbps, relay, advice };
}
