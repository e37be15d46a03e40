package totp

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestRecoveryCodes(t *testing.T) {
	plain, hashes, err := NewRecoveryCodes(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 10 || len(hashes) != 10 {
		t.Fatalf("got %d codes, %d hashes", len(plain), len(hashes))
	}
	shape := regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){3}$`)
	seen := map[string]bool{}
	for _, c := range plain {
		if !shape.MatchString(c) || seen[c] {
			t.Fatalf("bad or duplicate code %q", c)
		}
		seen[c] = true
	}

	tests := []struct {
		name      string
		code      string
		wantIndex int
		wantOK    bool
	}{
		{"as shown", plain[3], 3, true},
		{"upper case", strings.ToUpper(plain[0]), 0, true},
		{"no dashes", strings.ReplaceAll(plain[9], "-", ""), 9, true},
		{"spaces", strings.ReplaceAll(plain[5], "-", " "), 5, true},
		{"one char off", flip(plain[2]), -1, false},
		{"truncated", plain[1][:14], -1, false},
		{"not base32", "0000-1111-8888-9999", -1, false},
		{"newline inside", plain[6][:5] + "\n" + plain[6][6:], -1, false},
		{"empty", "", -1, false},
		{"huge", strings.Repeat("a", 1000), -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, ok := MatchRecoveryCode(tc.code, hashes)
			if i != tc.wantIndex || ok != tc.wantOK {
				t.Fatalf("Match = %d, %v; want %d, %v", i, ok, tc.wantIndex, tc.wantOK)
			}
		})
	}

	t.Run("single use once the caller deletes the hash", func(t *testing.T) {
		i, ok := MatchRecoveryCode(plain[4], hashes)
		if !ok {
			t.Fatal("no match")
		}
		rest := append(append([][]byte{}, hashes[:i]...), hashes[i+1:]...)
		if _, ok := MatchRecoveryCode(plain[4], rest); ok {
			t.Fatal("used code matched again")
		}
		if j, ok := MatchRecoveryCode(plain[5], rest); !ok || j != 4 {
			t.Fatalf("other code: %d, %v", j, ok)
		}
	})

	for _, n := range []int{0, -1, 101} {
		if _, _, err := NewRecoveryCodes(n); !errors.Is(err, ErrCount) {
			t.Errorf("NewRecoveryCodes(%d) err = %v, want ErrCount", n, err)
		}
	}
}

func flip(code string) string {
	b := []byte(code)
	if b[0] == 'a' {
		b[0] = 'b'
	} else {
		b[0] = 'a'
	}
	return string(b)
}
