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
 */

/** An API failure. `message` is the server's, written for the user. */
export class APIError extends Error {
  /**
   * @param {string} code      stable error code ("invalid_credentials", "network", …)
   * @param {string} message
   * @param {number} status    HTTP status (0 when the server was not reached)
   * @param {string} [requestId]
   */
  constructor(code, message, status, requestId) {
    super(message);
    this.name = 'APIError';
    this.code = code;
    this.status = status;
    this.requestId = requestId || '';
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
 * Calls the API. A body is sent as JSON; state-changing methods carry the
 * CSRF token. Resolves to the decoded JSON answer (or null for an empty one).
 * @param {'GET'|'POST'} method
 * @param {string} path  e.g. "/api/v1/visits"
 * @param {object} [body]
 * @param {RequestOptions} [opts]
 * @returns {Promise<any>}
 */
export async function request(method, path, body, opts = {}) {
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
  const err = new APIError(
    String(e.code || 'http_' + resp.status),
    String(e.message || `The request failed (HTTP ${resp.status}).`),
    resp.status,
    e.request_id || resp.headers.get('X-Request-ID') || '',
  );
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
    return err.requestId && err.status >= 500 ? `${err.message} (reference ${err.requestId})` : err.message;
  }
  return 'Something went wrong. Reload the page and try again.';
}
