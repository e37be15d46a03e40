package password

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordPolicy(t *testing.T) {
	const email = "jane.doe+ov@clinic.example"
	tests := []struct {
		name  string
		pw    string
		email string
		want  error
	}{
		{"passphrase", "correct staple horse of battery", email, nil},
		{"random mixed", "xK9#mQ2$vL7p", email, nil},
		{"exactly 12 runes", "tq7vw-hb2m-k", email, nil},
		{"non-ASCII counts runes", "ñandú çàfé ôü", email, nil}, // 13 runes, more bytes
		{"128 runes", strings.Repeat("ab3d-", 25) + "xyz", email, nil},
		{"11 runes", "tq7vw-hb2mk", email, ErrTooShort},
		{"11 runes multibyte", "ñandúçàféôü", email, ErrTooShort},
		{"NFD counted after NFC", "cafe\u0301cafe\u0301xy", email, ErrTooShort}, // 12 code points NFD, 10 NFC
		{"129 runes", strings.Repeat("ab3d-", 25) + "xyzw", email, ErrTooLong},
		{"huge", strings.Repeat("x", 100000), email, ErrTooLong},
		{"invalid UTF-8", "abcdefghijk\xff", email, ErrNotUTF8},
		{"email local part", "my jane.doe secret!", email, ErrContainsEmail},
		{"email name piece", "BigSecretJane2024", email, ErrContainsEmail},
		{"email without separators", "xx-janedoe-yy-77", email, ErrContainsEmail},
		{"no email given", "my jane.doe secret!", "", nil},
		{"one char repeated", "aaaaaaaaaaaa", email, ErrRepeated},
		{"spaces only", "            ", email, ErrRepeated},
		{"short unit repeated", "abcabcabcabc", email, ErrRepeated},
		{"keyboard walk", "qwertyuiop1234", email, ErrSequence},
		{"alphabet", "abcdefghijklm", email, ErrSequence},
		{"digits", "123456789012", email, ErrSequence},
		{"reverse digits", "0987654321098", email, ErrSequence},
		{"keyboard columns", "1qaz2wsx3edc", email, ErrSequence},
		{"rows mixed", "asdfghjkl;'zxcvbnm", email, ErrSequence},
		{"common exact long", "qwertyuiopasdfghjklzxcvbnm", email, ErrSequence},
		{"common phrase", "correcthorsebatterystaple", email, ErrCommon},
		{"common phrase spaced", "Correct Horse Battery Staple", email, ErrCommon},
		{"common plus year", "Password2024!", email, ErrCommon},
		{"common plus digits run", "sunshine123456", email, ErrCommon},
		{"common plus date", "michael01011990", email, ErrCommon},
		{"common with prefix", "1234superman!", email, ErrCommon},
		{"leetspeak", "P@ssw0rd12345", email, ErrCommon},
		{"leet with 1 as i", "1loveyou2024", email, ErrCommon},
		{"doubled word", "monkeymonkey", email, ErrCommon},
		{"doubled with suffix", "dragondragon1", email, ErrCommon},
		{"service name", "OpenVisit2024!", email, ErrCommon},
		{"common plus strong suffix", "dragon-7Kq#2vWz", email, nil},
		{"common inside passphrase", "my dragon eats blue tulips", email, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Check(tc.pw, tc.email); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
				t.Fatalf("Check(%q) = %v, want %v", tc.pw, got, tc.want)
			}
		})
	}
}

func TestCommonListLoaded(t *testing.T) {
	if len(common) < 1000 {
		t.Fatalf("common list has %d entries, want at least 1000", len(common))
	}
	for _, w := range []string{"password", "123456", "qwerty", "iloveyou", "openvisit"} {
		if _, ok := common[w]; !ok {
			t.Errorf("%q missing from common list", w)
		}
	}
}
