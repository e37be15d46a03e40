// Package csrf protects cookie-authenticated, state-changing requests against
// cross-site request forgery, in two independent layers:
//
//  1. Origin: the browser-set Origin header must equal the site's own origin
//     (or, when a browser sends no Origin, Sec-Fetch-Site must say
//     same-origin). A request carrying neither is refused: every browser the
//     pages support sends one of them, and non-browser clients do not
//     authenticate with the session cookie.
//  2. Token: the X-CSRF-Token header must carry the session's CSRF token,
//     HMAC-SHA256(server key, session token hash). It is derived, not stored,
//     so it costs no column and dies with the session; the page receives it
//     when it loads and the shared client module sends it on every write.
//
// The session cookie is also SameSite=Strict; these checks do not rely on it.
package csrf

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
)

// Header is the request header that carries the token.
const Header = "X-CSRF-Token"

// MinKeyLen is the shortest server key accepted (256 bits).
const MinKeyLen = 32

// Errors from Token, Check and CheckOrigin. The request errors map to 403.
var (
	ErrKey          = errors.New("csrf: server key shorter than 32 bytes")
	ErrCrossOrigin  = errors.New("csrf: cross-origin request")
	ErrNoOrigin     = errors.New("csrf: no Origin or Sec-Fetch-Site header")
	ErrMissingToken = errors.New("csrf: missing token")
	ErrBadToken     = errors.New("csrf: wrong token")
)

// domain separates this HMAC use of the key from any other.
const domain = "openvisit csrf v1\x00"

// maxTokenLen bounds the header before comparing: a token is 43 characters.
const maxTokenLen = 128

// Token returns the CSRF token for the session whose stored token hash is
// sessionHash (session.HashToken of the cookie). key is a server secret of at
// least MinKeyLen random bytes, shared by every API node; rotating it
// invalidates open pages' tokens, not sessions.
func Token(key, sessionHash []byte) (string, error) {
	if len(key) < MinKeyLen {
		return "", ErrKey
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write(sessionHash)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// Check lets safe methods (GET, HEAD, OPTIONS) through untouched: they must
// not change state. For any other method it requires a same-origin request
// (CheckOrigin) and the header token equal to expected, compared in constant
// time. allowedOrigin is the site's serialised origin, e.g.
// "https://visits.clinic.example" (scheme://host[:port], no default port, no
// path). An empty expected (no session) refuses every write.
func Check(r *http.Request, allowedOrigin, expected string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := CheckOrigin(r, allowedOrigin); err != nil {
		return err
	}
	got := r.Header.Values(Header)
	if len(got) == 0 || got[0] == "" {
		return ErrMissingToken
	}
	if len(got) > 1 || len(got[0]) > maxTokenLen || expected == "" ||
		subtle.ConstantTimeCompare([]byte(got[0]), []byte(expected)) != 1 {
		return ErrBadToken
	}
	return nil
}

// CheckOrigin requires that r comes from allowedOrigin, whatever its method.
// Use it on its own for WebSocket upgrades, which are GETs that browsers send
// cross-origin with cookies (as the Upgrader's CheckOrigin).
func CheckOrigin(r *http.Request, allowedOrigin string) error {
	allowed := strings.TrimSuffix(allowedOrigin, "/")
	if site := r.Header.Values("Sec-Fetch-Site"); len(site) > 1 || (len(site) == 1 && site[0] != "same-origin") {
		return ErrCrossOrigin
	}
	origin := r.Header.Values("Origin")
	switch {
	case len(origin) > 1:
		return ErrCrossOrigin
	case len(origin) == 1:
		if allowed == "" || !strings.EqualFold(origin[0], allowed) {
			return ErrCrossOrigin
		}
		return nil
	case r.Header.Get("Sec-Fetch-Site") == "same-origin":
		return nil
	}
	return ErrNoOrigin
}
