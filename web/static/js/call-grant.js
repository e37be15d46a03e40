// How the call page gets its join grant (a single-use token for the media
// node, its address and ICE servers): redeeming a demo link's one-time code,
// or, with a session, asking the visit's join endpoint (again at every
// reconnection).

import { APIError, post } from './api.js';

/**
 * @typedef {object} Grant
 * @property {string} visit_id
 * @property {string} participant_id
 * @property {string} role
 * @property {string} token
 * @property {string} ws_url
 * @property {RTCIceServer[]} [ice_servers]
 * @property {import('./call-ice.js').Help} [help] the clinic's help line
 */

/** Reads and removes the one-time code from the fragment. @returns {string} */
export function takeCode() {
  const params = new URLSearchParams(location.hash.slice(1));
  const code = params.get('code') || '';
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return code;
}

/** @param {string} code @returns {Promise<Grant>} */
export async function redeem(code) {
  let resp;
  try {
    resp = await fetch('/api/v1/demo/redeem', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ code }),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new Error('The server could not be reached. Check your connection and try again.');
  }
  /** @type {any} */
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // handled below
  }
  if (!resp.ok) {
    const msg = body && body.error && body.error.message;
    throw new Error(msg || `The visit link could not be used (HTTP ${resp.status}).`);
  }
  if (!body || !body.token || !body.ws_url || !body.visit_id) {
    throw new Error('The server sent an unexpected answer.');
  }
  return body;
}

export const VISIT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A fresh join grant for the session's participant (a new single-use token
 * each time). Errors the server means for good (ended, not admitted, no
 * session, no access) are marked fatal for the client's reconnection;
 * network trouble and 5xx are not.
 * @param {string} visit
 * @returns {Promise<Grant>}
 */
export async function fetchGrant(visit) {
  try {
    /** @type {Grant} */
    const body = await post(`/api/v1/visits/${encodeURIComponent(visit)}/join`, {}, { redirect401: false });
    if (!body || !body.token || !body.ws_url || !body.visit_id) throw new Error('The server sent an unexpected answer.');
    return body;
  } catch (err) {
    if (err instanceof APIError && err.status >= 400 && err.status < 500 && err.status !== 429) {
      throw Object.assign(err, { fatal: true, ended: err.code === 'visit_closed' });
    }
    throw err;
  }
}

/**
 * Diagnostics switch: with sessionStorage 'openvisit.iceTransportPolicy' set
 * to 'relay' (from the developer console, or by a test before the page
 * loads), the call uses relayed (TURN) candidates only, to check that the
 * relay alone carries a call. Nothing in the product sets it, and it lasts
 * for the tab only.
 * @returns {boolean}
 */
export function relayOnly() {
  try {
    return sessionStorage.getItem('openvisit.iceTransportPolicy') === 'relay';
  } catch {
    return false; // storage blocked
  }
}
