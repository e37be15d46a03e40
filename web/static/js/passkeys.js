// Passkeys (WebAuthn) in the browser: the server's ceremony options (JSON,
// as github.com/go-webauthn/webauthn writes them) in, the authenticator's
// answer (PublicKeyCredential.toJSON()) out. The sign-in page and the
// security page share it.

/** Whether this browser can use passkeys with JSON options. */
export const passkeysSupported = typeof window.PublicKeyCredential === 'function' &&
  typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';

/**
 * Creates a passkey from registration options ({publicKey: …}).
 * @param {{publicKey: any}} options
 * @returns {Promise<object>} the new credential as JSON
 */
export async function createPasskey(options) {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
  const cred = /** @type {PublicKeyCredential} */ (await navigator.credentials.create({ publicKey }));
  return cred.toJSON();
}

/**
 * Asks for a passkey with sign-in options ({publicKey: …}).
 * @param {{publicKey: any}} options
 * @returns {Promise<object>} the assertion as JSON
 */
export async function getPasskey(options) {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
  const cred = /** @type {PublicKeyCredential} */ (await navigator.credentials.get({ publicKey }));
  return cred.toJSON();
}

/**
 * What to tell the user when the browser's passkey prompt failed.
 * @param {unknown} err
 */
export function passkeyProblem(err) {
  if (err instanceof DOMException && err.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
  if (err instanceof DOMException && err.name === 'InvalidStateError') return 'This passkey is already registered.';
  return '';
}
