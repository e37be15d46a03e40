// Package totp implements the time-based one-time passwords that providers
// and admins use as a second factor (RFC 6238 over RFC 4226 HOTP: HMAC-SHA-1,
// 6 digits, 30-second steps, the parameters every authenticator app
// defaults to), the otpauth:// enrolment URI and its QR code, and one-time
// recovery codes.
//
// Nothing here stores anything. The caller keeps, per user, the secret
// (encrypted at rest), the last accepted step, and the recovery code hashes.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"

	"rsc.io/qr"
)

// Fixed parameters. Changing any of them invalidates every enrolment.
const (
	Issuer     = "OpenVisit"
	Digits     = 6
	Period     = 30 * time.Second
	SecretSize = 20 // bytes, the RFC 4226 recommended 160 bits
	// Skew is how many steps either side of now are accepted, for clock drift
	// and typing time.
	Skew = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh random secret, base32 without padding (32
// characters), as authenticator apps expect it.
func NewSecret() (string, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("totp: new secret: %w", err)
	}
	return b32.EncodeToString(b), nil
}

func decodeSecret(secret string) ([]byte, error) {
	key, err := b32.DecodeString(strings.ToUpper(secret))
	if err != nil || len(key) < 16 || len(key) > 64 {
		return nil, ErrSecret
	}
	return key, nil
}

// URI returns the otpauth:// key URI for enrolment (the de-facto Key Uri
// Format of Google Authenticator). account is the label shown in the app next
// to the issuer: the caller chooses an opaque user ID or the email address.
func URI(secret, account string) string {
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", Issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(Digits))
	q.Set("period", fmt.Sprint(int(Period/time.Second)))
	// The key URI format forbids a colon in issuer or account (the colon
	// separates them), so one in account is percent-encoded.
	label := url.PathEscape(Issuer) + ":" + strings.ReplaceAll(url.PathEscape(account), ":", "%3A")
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// QRPNG returns a PNG of uri as a QR code (error correction level M, 8 pixels
// per module, with the standard 4-module quiet zone) for the enrolment page.
// Serve it with Cache-Control: no-store: it contains the secret.
func QRPNG(uri string) ([]byte, error) {
	c, err := qr.Encode(uri, qr.M)
	if err != nil {
		return nil, fmt.Errorf("totp: qr: %w", err)
	}
	return c.PNG(), nil
}

// Step returns the RFC 6238 time step that t falls in (floor(unix/30)).
func Step(t time.Time) int64 {
	u, p := t.Unix(), int64(Period/time.Second)
	if u < 0 {
		return (u - p + 1) / p
	}
	return u / p
}

// Code returns the code for the step t falls in. Validate is what checks a
// code; Code is for tests, the development CLI and end-to-end test users.
func Code(secret string, t time.Time) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	s := Step(t)
	if s < 0 {
		return "", fmt.Errorf("totp: time before the epoch")
	}
	return hotp(key, uint64(s), Digits), nil
}

// Validate checks a 6-digit code against the steps now-Skew … now+Skew and
// returns the step that matched. It never accepts a step at or below
// lastUsedStep: the caller must store the returned step as the user's new
// lastUsedStep (in the same transaction that completes the login), so a code,
// or an earlier one, cannot be replayed. Pass 0 for a user who has never
// used one. Anything but exactly six ASCII digits, or a malformed secret, is
// refused. Comparison is constant time and covers every candidate step.
func Validate(secret, code string, now time.Time, lastUsedStep int64) (step int64, ok bool) {
	if len(code) != Digits {
		return 0, false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return 0, false
	}
	cur := Step(now)
	for s := cur - Skew; s <= cur+Skew; s++ {
		if s <= lastUsedStep || s < 0 {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(hotp(key, uint64(s), Digits)), []byte(code)) == 1 {
			step, ok = s, true // keep going: the latest match wins, timing stays flat
		}
	}
	return step, ok
}

// hotp is RFC 4226 HOTP with HMAC-SHA-1 and dynamic truncation.
func hotp(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}
