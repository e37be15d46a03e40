// Package session holds the pieces of a server-side session that need no
// database: the opaque token and its stored hash, the expiry policy, and the
// cookie that carries the token.
//
// A token is 256 random bits in base64url (43 characters). Only its SHA-256
// is stored (sessions.id_hash), so a read of the sessions table does not
// yield usable cookies. A plain hash suffices, unlike for passwords, because
// the token is uniformly random: there is nothing to guess.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// TokenLen is the length of a plain token string.
const TokenLen = 43

// NewToken returns a fresh token for the cookie and its hash for storage.
func NewToken() (plain string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("session: new token: %w", err)
	}
	plain = base64.RawURLEncoding.EncodeToString(b)
	return plain, HashToken(plain), nil
}

// HashToken returns the stored form of a plain token: SHA-256 of its text.
// Look a presented cookie up by this hash; check WellFormed first to skip
// the database for junk.
func HashToken(plain string) []byte {
	sum := sha256.Sum256([]byte(plain))
	return sum[:]
}

// WellFormed reports whether s has the shape of a token NewToken makes.
func WellFormed(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32 // the decoder skips CR/LF; the length catches them
}

// Policy is how long a session lives: it ends after Idle without activity or
// Absolute after creation, whichever comes first. Both must be positive; a
// zero field expires every session (fail closed).
type Policy struct {
	Idle     time.Duration
	Absolute time.Duration
}

// The policies of docs/DESIGN.md decision 8.
var (
	// StaffPolicy applies to providers and admins.
	StaffPolicy = Policy{Idle: 15 * time.Minute, Absolute: 12 * time.Hour}
	// PatientPolicy applies to patients' visit sessions.
	PatientPolicy = Policy{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}
)

// Check reports whether a session created at createdAt and last active at
// lastSeen is still valid at now: nil, ErrAbsoluteExpired or ErrIdleExpired
// (absolute wins when both apply). A session is expired at the exact limit.
// On success the caller updates lastSeen to now (it may coarsen the write,
// e.g. once a minute, at the price of that much idle slack).
func (p Policy) Check(createdAt, lastSeen, now time.Time) error {
	if lastSeen.Before(createdAt) {
		lastSeen = createdAt
	}
	if now.Sub(createdAt) >= p.Absolute {
		return ErrAbsoluteExpired
	}
	if now.Sub(lastSeen) >= p.Idle {
		return ErrIdleExpired
	}
	return nil
}

// ExpiresAt returns when the session will end if there is no further
// activity: the earlier of lastSeen+Idle and createdAt+Absolute. Pages use
// it to warn before the idle logoff.
func (p Policy) ExpiresAt(createdAt, lastSeen time.Time) time.Time {
	if lastSeen.Before(createdAt) {
		lastSeen = createdAt
	}
	idle, abs := lastSeen.Add(p.Idle), createdAt.Add(p.Absolute)
	if abs.Before(idle) {
		return abs
	}
	return idle
}

// hostPrefix binds a cookie to the exact origin that set it: browsers accept
// it only with Secure, Path=/ and no Domain, so a sibling subdomain cannot
// plant or overwrite it.
const hostPrefix = "__Host-"

// Cookie returns the session cookie: name gets the __Host- prefix (unless it
// already has it), Secure, HttpOnly, SameSite=Strict, Path=/, no Domain.
// maxAge > 0 sets Max-Age (rounded up to whole seconds, e.g. the policy's
// Absolute); maxAge <= 0 makes a browser-session cookie. The server-side
// session row, not the cookie, decides expiry.
func Cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     cookieName(name),
		Value:    value,
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
	if maxAge > 0 {
		c.MaxAge = int((maxAge + time.Second - 1) / time.Second)
	}
	return c
}

// ClearCookie returns the cookie that deletes the session cookie name (with
// the same attributes, as browsers require to match it).
func ClearCookie(name string) *http.Cookie {
	c := Cookie(name, "", 0)
	c.MaxAge = -1 // Max-Age=0 on the wire
	c.Expires = time.Unix(0, 0)
	return c
}

func cookieName(name string) string {
	if strings.HasPrefix(name, hostPrefix) {
		return name
	}
	return hostPrefix + name
}
