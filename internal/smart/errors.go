package smart

import (
	"crypto"
	"encoding/base64"
	"errors"
)

// Refusals of a registration.
var (
	ErrBadName  = errors.New("smart: client name must be 1 to 100 printable characters")
	ErrBadKeys  = errors.New("smart: keys must be a JWKS or PEM of public RSA (2048+ bits) or P-384 keys with key IDs")
	ErrBadScope = errors.New("smart: unknown or missing scope")
)

// Error is a refusal at the token endpoint, with its OAuth 2.0 error code
// (RFC 6749 §5.2). Reason is for the audit log only: which check failed.
type Error struct {
	Code   string // invalid_request, invalid_client, invalid_grant, invalid_scope, unsupported_grant_type
	Reason string
}

func (e *Error) Error() string { return "smart: " + e.Code + ": " + e.Reason }

func refuse(code, reason string) *Error { return &Error{Code: code, Reason: reason} }

// ErrNoToken: an access token that is unknown, expired or of a revoked
// client.
var ErrNoToken = errors.New("smart: invalid access token")

const cryptoSHA256 = crypto.SHA256

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
