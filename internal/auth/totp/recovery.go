package totp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// Recovery codes are 16 base32 characters (80 random bits) shown to the user
// in four groups, "abcd-efgh-ijkl-mnop", when they enrol. Only their SHA-256
// is stored.
//
// Why a plain hash and not argon2: a slow hash protects low-entropy secrets
// that people choose. These are machine-generated with 80 bits of entropy, so
// an attacker holding the hashes faces 2^80 SHA-256 evaluations per code
// whatever the hash speed; argon2 would only add a cost to every honest check.
// (This is also why codes are 16 characters, not 10: 50 bits behind a fast
// hash is within reach of a GPU farm.)
//
// Single use is the caller's job: when MatchRecoveryCode reports index i,
// delete hashes[i] from the store in the same transaction that completes the
// login, and refuse the login if that delete affects no row (a concurrent use
// won the race).
const (
	recoveryLen   = 16
	recoveryGroup = 4
	maxRecovery   = 100
	// recoveryDomain separates these hashes from any other SHA-256 in the
	// system (session tokens are hashed bare).
	recoveryDomain = "openvisit recovery code v1\x00"
)

// NewRecoveryCodes returns n fresh codes for display and their hashes for
// storage, in the same order. Ten is the usual n.
func NewRecoveryCodes(n int) (plain []string, hashes [][]byte, err error) {
	if n < 1 || n > maxRecovery {
		return nil, nil, ErrCount
	}
	raw := make([]byte, 10) // 80 bits = 16 base32 characters exactly
	for range n {
		if _, err := rand.Read(raw); err != nil {
			return nil, nil, fmt.Errorf("totp: recovery codes: %w", err)
		}
		canon := b32.EncodeToString(raw)
		var b strings.Builder
		for i := 0; i < len(canon); i += recoveryGroup {
			if i > 0 {
				b.WriteByte('-')
			}
			b.WriteString(strings.ToLower(canon[i : i+recoveryGroup]))
		}
		plain = append(plain, b.String())
		hashes = append(hashes, hashRecovery(canon))
	}
	return plain, hashes, nil
}

// MatchRecoveryCode normalises code (case, dashes and spaces do not matter)
// and reports the index of the stored hash it matches. Every candidate is
// compared, each in constant time. Malformed input matches nothing.
func MatchRecoveryCode(code string, hashes [][]byte) (index int, ok bool) {
	if len(code) > 64 {
		return -1, false
	}
	canon := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(canon) != recoveryLen {
		return -1, false
	}
	for i := 0; i < len(canon); i++ {
		if c := canon[i]; (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return -1, false
		}
	}
	h := hashRecovery(canon)
	index = -1
	for i, want := range hashes {
		if subtle.ConstantTimeCompare(h, want) == 1 && index < 0 {
			index = i
		}
	}
	return index, index >= 0
}

func hashRecovery(canon string) []byte {
	sum := sha256.Sum256([]byte(recoveryDomain + canon))
	return sum[:]
}
