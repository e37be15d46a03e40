// The control plane's JSON API, as the staff pages use it: same-origin
// fetch, the session's CSRF token on every state-changing request, and one
// error type carrying the server's stable code, message and request ID.

/**
 * @typedef {object} SessionView
 * @property {'provider'|'admin'|'patient'} kind
 * @property {string} [user_id]
 * @property {string} [email]
 * @property {string} [name]
 * @property {string} [visit_id]
 * @property {string} csrf_token
 * @property {string} idle_ends_at  RFC 3339, server clock
 * @property {string} ends_at       RFC 3339, server clock (absolute limit)
 * @property {number} idle_seconds
 * @property {string} now           RFC 3339, the server's clock when it answered
 * @property {boolean} [dev_outbox] development only: mail is kept at /outbox
 * @property {string} [lang] a patient's invite's language (a catalogue code)
 */

/** An API failure. `message` is the server's, written for the user. */
export class APIError extends Error {
  /**
   * @param {string} code      stable error code ("invalid_credentials", "network", …)
   * @param {string} message
   * @param {number} status    HTTP status (0 when the server was not reached)
   * @param {string} [requestId]
   * @param {number} [retryAfter]  seconds to wait before trying again (503)
   */
  constructor(code, message, status, requestId, retryAfter) {
    super(message);
    this.name = 'APIError';
    this.code = code;
    this.status = status;
    this.requestId = requestId || '';
    this.retryAfter = retryAfter || 0;
    /** @type {Record<string, any>} the server's details of the refusal */
    this.details = {};
  }
}

let csrfToken = '';

/** Remembers the CSRF token of the current session (from a SessionView). @param {string} token */
export function setCSRF(token) {
  csrfToken = token || '';
}

/**
 * @typedef {object} RequestOptions
 * @property {boolean} [redirect401]  go to /signin on 401 (default true)
 */

/**
 * The code of a 503 meaning "the service cannot reach its database right
 * now" (the server sends Retry-After). Calls in progress carry on; pages
 * say so and try again.
 */
export const UNAVAILABLE = 'service_unavailable';
/** What pages show meanwhile. */
export const UNAVAILABLE_TEXT = 'The service is briefly unavailable; trying again…';
/** A state-changing request is not repeated by itself: the user tries again. */
const UNAVAILABLE_ACTION_TEXT = 'The service is briefly unavailable; try again in a moment.';
/** A GET is repeated for about two minutes before the page is told. */
const GET_RETRIES = 24;

/** @type {Set<(available: boolean) => void>} */
const availabilityListeners = new Set();
let serviceAvailable = true;

/**
 * Calls fn(false) when the service becomes briefly unavailable and
 * fn(true) when it answers again. While no page listens, a status banner
 * says so instead. Returns the unsubscribe function.
 * @param {(available: boolean) => void} fn
 */
export function onAvailability(fn) {
  availabilityListeners.add(fn);
  return () => availabilityListeners.delete(fn);
}

/**
 * Records whether the service answers, for what a page learns outside
 * request() (an event stream that opened, or failed with a 503).
 * @param {boolean} ok
 */
export function reportAvailability(ok) {
  setAvailable(ok);
}

/** @param {boolean} ok */
function setAvailable(ok) {
  if (ok === serviceAvailable) return;
  serviceAvailable = ok;
  if (availabilityListeners.size === 0) banner(ok);
  for (const fn of availabilityListeners) fn(ok);
}

/** The default notice: one status line at the top of the page. @param {boolean} ok */
function banner(ok) {
  let el = document.getElementById('service-status');
  if (ok) {
    el?.remove();
    return;
  }
  if (!el) {
    el = document.createElement('p');
    el.id = 'service-status';
    el.className = 'notice service-status';
    el.setAttribute('role', 'status');
    (document.querySelector('main') || document.body).prepend(el);
  }
  el.textContent = UNAVAILABLE_TEXT;
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls the API. A body is sent as JSON; state-changing methods carry the
 * CSRF token. Resolves to the decoded JSON answer (or null for an empty one).
 * While the service is briefly unavailable (503 service_unavailable), a GET
 * waits Retry-After and tries again, for about two minutes; any other
 * method fails at once with a message saying so.
 * @param {'GET'|'POST'} method
 * @param {string} path  e.g. "/api/v1/visits"
 * @param {object} [body]
 * @param {RequestOptions} [opts]
 * @returns {Promise<any>}
 */
export async function request(method, path, body, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      const data = await requestOnce(method, path, body, opts);
      setAvailable(true);
      return data;
    } catch (err) {
      if (!(err instanceof APIError) || err.code !== UNAVAILABLE) {
        if (err instanceof APIError && err.status > 0) setAvailable(true);
        throw err;
      }
      setAvailable(false);
      if (method !== 'GET') throw new APIError(err.code, UNAVAILABLE_ACTION_TEXT, err.status, err.requestId, err.retryAfter);
      if (attempt >= GET_RETRIES) throw err;
      await sleep(err.retryAfter * 1000);
    }
  }
}

/**
 * One call of request().
 * @param {'GET'|'POST'} method @param {string} path @param {object|undefined} body @param {RequestOptions} opts
 * @returns {Promise<any>}
 */
async function requestOnce(method, path, body, opts) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch {
    throw new APIError('network', 'The server could not be reached. Check your connection and try again.', 0);
  }
  /** @type {any} */
  let data = null;
  const text = await resp.text().catch(() => '');
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (resp.ok) return data;
  const e = (data && data.error) || {};
  // A proxy in front (the Ingress with every api pod unready, a restart)
  // answers 502/503/504 without our body: the same thing to a user.
  const proxied = !e.code && [502, 503, 504].includes(resp.status);
  const code = proxied ? UNAVAILABLE : String(e.code || 'http_' + resp.status);
  const retryAfter = Math.min(30, Math.max(1, Number(resp.headers.get('Retry-After')) || 5));
  const err = new APIError(
    code,
    code === UNAVAILABLE ? UNAVAILABLE_TEXT : String(e.message || `The request failed (HTTP ${resp.status}).`),
    resp.status,
    e.request_id || resp.headers.get('X-Request-ID') || '',
    retryAfter,
  );
  // The refusal's particulars (a time, a count), for pages that word it themselves.
  err.details = e.details && typeof e.details === 'object' ? e.details : {};
  if (resp.status === 401 && opts.redirect401 !== false) {
    toSignIn();
  }
  throw err;
}

/** @param {string} path @param {RequestOptions} [opts] */
export const get = (path, opts) => request('GET', path, undefined, opts);
/** @param {string} path @param {object} [body] @param {RequestOptions} [opts] */
export const post = (path, body = {}, opts) => request('POST', path, body, opts);

/**
 * Leaves for the sign-in page. `reason` becomes a flag in the query (no
 * identifiers): "expired" or "signedout".
 * @param {string} [reason]
 */
export function toSignIn(reason) {
  const q = reason ? `?${reason}=1` : '';
  location.replace('/signin' + q);
}

/**
 * Loads the current session (passively: this does not count as activity)
 * and remembers its CSRF token. Sends the user to /signin when there is none.
 * @param {RequestOptions} [opts]
 * @returns {Promise<SessionView>}
 */
export async function loadSession(opts) {
  /** @type {SessionView} */
  const view = await get('/api/v1/auth/session', opts);
  setCSRF(view.csrf_token);
  return view;
}

/** The home page of a signed-in user of this kind. @param {string} kind */
export function homeFor(kind) {
  if (kind === 'admin') return '/admin';
  if (kind === 'provider') return '/provider';
  return '/';
}

/** A message for the user, with the request ID to quote when it helps. @param {unknown} err */
export function describe(err) {
  if (err instanceof APIError) {
    return err.requestId && err.status >= 500 && err.code !== UNAVAILABLE ? `${err.message} (reference ${err.requestId})` : err.message;
  }
  return 'Something went wrong. Reload the page and try again.';
}
