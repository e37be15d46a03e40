// Package password hashes passwords with argon2id, stores them as PHC strings
// and applies the password policy (Check).
//
// The stored form is
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt and key in standard base64 without padding, as the PHC string
// format prescribes. Passwords are normalised to Unicode NFC before hashing,
// so that the same password typed on systems that compose characters
// differently verifies.
//
// Hash and Verify cost about DefaultParams.Memory of RAM and tens of
// milliseconds of one core each: callers on an unauthenticated endpoint must
// bound how many run at once and rate-limit them (see package throttle).
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams is the current hashing policy (OWASP's argon2id minimum:
// 19 MiB, 2 passes, 1 lane) with a 16-byte salt and a 32-byte key. Verify
// reports needsRehash for a stored hash weaker than this in any respect.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters accepted from Hash callers and from stored strings, so
// that a corrupted or hostile row cannot make Verify allocate gigabytes.
const (
	minMemory  = 8 * 1024   // 8 MiB
	maxMemory  = 256 * 1024 // 256 MiB
	minTime    = 1
	maxTime    = 10
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	// maxPHCLen bounds the stored string before any parsing.
	maxPHCLen = 256
)

var b64 = base64.RawStdEncoding.Strict()

func (p Params) valid() bool {
	return p.Memory >= minMemory && p.Memory <= maxMemory &&
		p.Memory >= 8*uint32(p.Threads) &&
		p.Time >= minTime && p.Time <= maxTime &&
		p.Threads >= 1 && p.Threads <= maxThreads &&
		p.SaltLen >= minSaltLen && p.SaltLen <= maxSaltLen &&
		p.KeyLen >= minKeyLen && p.KeyLen <= maxKeyLen
}

// weakerThan reports whether p costs less than, or stores less than, policy.
// Lanes are not compared: fewer lanes do not make a hash cheaper to attack.
func (p Params) weakerThan(policy Params) bool {
	return p.Memory < policy.Memory || p.Time < policy.Time ||
		p.SaltLen < policy.SaltLen || p.KeyLen < policy.KeyLen
}

// Hash returns the PHC string of pw hashed with p and a fresh random salt.
func Hash(pw string, p Params) (string, error) {
	if !p.valid() {
		return "", ErrParams
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	key := argon2.IDKey([]byte(norm.NFC.String(pw)), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

// Verify reports whether pw matches the stored PHC string, comparing in
// constant time. needsRehash is true only when ok is true and the stored
// parameters are below DefaultParams: the caller should then store
// Hash(pw, DefaultParams) in its place while it still holds pw. err is
// non-nil (wrapping ErrMalformed) only when phc cannot be used at all; a
// wrong password is (false, false, nil).
func Verify(phc, pw string) (ok bool, needsRehash bool, err error) {
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(norm.NFC.String(pw)), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p.weakerThan(DefaultParams), nil
}

// dummySalt is a fixed salt for DummyVerify; its value does not matter.
var dummySalt = []byte("openvisit-dummy!")

// DummyVerify spends what Verify spends on a DefaultParams hash and returns
// nothing. Call it when the account does not exist (or has no password), so
// that the response time does not tell an attacker which emails are known.
func DummyVerify() {
	p := DefaultParams
	got := argon2.IDKey([]byte("dummy password"), dummySalt, p.Time, p.Memory, p.Threads, p.KeyLen)
	subtle.ConstantTimeCompare(got, got)
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC parses a stored string strictly: only the exact shape encodePHC
// writes (argon2id, v=19, m,t,p in that order, canonical decimals, canonical
// unpadded base64) within the parameter bounds. It never panics.
func parsePHC(s string) (p Params, salt, key []byte, err error) {
	if len(s) > maxPHCLen {
		return Params{}, nil, nil, ErrMalformed
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, ErrMalformed
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return Params{}, nil, nil, ErrMalformed
	}
	m, ok1 := param(kv[0], "m=")
	t, ok2 := param(kv[1], "t=")
	th, ok3 := param(kv[2], "p=")
	if !ok1 || !ok2 || !ok3 || th > maxThreads {
		return Params{}, nil, nil, ErrMalformed
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	// The decoder skips CR and LF; re-encoding catches them and any other
	// non-canonical spelling.
	if err1 != nil || err2 != nil || b64.EncodeToString(salt) != parts[4] || b64.EncodeToString(key) != parts[5] {
		return Params{}, nil, nil, ErrMalformed
	}
	p = Params{Memory: m, Time: t, Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if !p.valid() {
		return Params{}, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}

// param parses "name=<decimal>" with no sign and no leading zero.
func param(s, name string) (uint32, bool) {
	v, ok := strings.CutPrefix(s, name)
	if !ok || v == "" || len(v) > 10 || (len(v) > 1 && v[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}
