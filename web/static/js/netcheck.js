// The device check's network check (join page): how quickly the server
// answers (round trip), how fast a download comes (throughput), and
// whether the browser reaches the visit's relay over TCP or TLS — the way
// video gets through when a network blocks UDP. It only advises: the
// patient may continue whatever it finds.

import { get } from './api.js';
import { t } from './i18n.js';

/** Every patient-facing string of the network check, in one place (the message catalogue takes them from here). */
export const NETCHECK_STRINGS = {
  get title() { return t('netcheck.title'); },
  get checking() { return t('netcheck.checking'); },
  rtt: (/** @type {number} */ ms) => t('netcheck.rtt', { ms }),
  speed: (/** @type {number} */ mbps) => t('netcheck.speed', { mbps: mbps.toFixed(1) }),
  get relayOk() { return t('netcheck.relay_ok'); },
  get relayFailed() { return t('netcheck.relay_failed'); },
  get relayNone() { return t('netcheck.relay_none'); },
  get good() { return t('netcheck.good'); },
  get slow() { return t('netcheck.slow'); },
  get laggy() { return t('netcheck.laggy'); },
  get blocked() { return t('netcheck.blocked'); },
  get failed() { return t('netcheck.failed'); },
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
