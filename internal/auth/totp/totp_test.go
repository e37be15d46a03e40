package totp

import (
	"bytes"
	"encoding/base32"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA-1 seed of RFC 6238 appendix B, "12345678901234567890".
var rfcSecret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

func TestRFC6238Vectors(t *testing.T) {
	tests := []struct {
		name string
		unix int64
		want string // the RFC's 8-digit SHA-1 value
	}{
		{"59", 59, "94287082"},
		{"1111111109", 1111111109, "07081804"},
		{"1111111111", 1111111111, "14050471"},
		{"1234567890", 1234567890, "89005924"},
		{"2000000000", 2000000000, "69279037"},
		{"20000000000", 20000000000, "65353130"},
	}
	key := []byte("12345678901234567890")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(tc.unix, 0)
			if got := hotp(key, uint64(Step(now)), 8); got != tc.want {
				t.Fatalf("8-digit code = %s, want %s", got, tc.want)
			}
			// The 6-digit code is the same value mod 10^6: its last six digits.
			code, err := Code(rfcSecret, now)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want[2:]; code != want {
				t.Fatalf("Code = %s, want %s", code, want)
			}
			if step, ok := Validate(rfcSecret, code, now, 0); !ok || step != Step(now) {
				t.Fatalf("Validate = %d, %v; want %d, true", step, ok, Step(now))
			}
		})
	}
}

func TestTOTPReplayRejected(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 9, 0, 10, 0, time.UTC)
	s := Step(now)
	codeAt := func(step int64) string {
		c, err := Code(secret, time.Unix(step*30, 0))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	step, ok := Validate(secret, codeAt(s), now, 0)
	if !ok || step != s {
		t.Fatalf("first use: Validate = %d, %v; want %d, true", step, ok, s)
	}
	last := step // the caller stores this

	if _, ok := Validate(secret, codeAt(s), now, last); ok {
		t.Fatal("the same code was accepted twice")
	}
	if _, ok := Validate(secret, codeAt(s), now.Add(20*time.Second), last); ok {
		t.Fatal("the same code was accepted again in the next step")
	}
	if _, ok := Validate(secret, codeAt(s-1), now, last); ok {
		t.Fatal("an earlier step's code was accepted after a later one")
	}
	next := now.Add(Period)
	step, ok = Validate(secret, codeAt(s+1), next, last)
	if !ok || step != s+1 {
		t.Fatalf("next step's code: Validate = %d, %v; want %d, true", step, ok, s+1)
	}
}

func TestValidate(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s := Step(now)
	code := func(step int64) string {
		c, _ := Code(secret, time.Unix(step*30, 0))
		return c
	}
	tests := []struct {
		name     string
		secret   string
		code     string
		lastUsed int64
		wantOK   bool
		wantStep int64
	}{
		{"current", secret, code(s), 0, true, s},
		{"previous step", secret, code(s - 1), 0, true, s - 1},
		{"next step", secret, code(s + 1), 0, true, s + 1},
		{"two steps back", secret, code(s - 2), 0, false, 0},
		{"two steps ahead", secret, code(s + 2), 0, false, 0},
		{"lower-case secret", strings.ToLower(secret), code(s), 0, true, s},
		{"last used blocks previous", secret, code(s - 1), s - 1, false, 0},
		{"last used ahead blocks all", secret, code(s + 1), s + 1, false, 0},
		{"five digits", secret, code(s)[:5], 0, false, 0},
		{"seven digits", secret, code(s) + "0", 0, false, 0},
		{"spaces", secret, code(s)[:3] + " " + code(s)[3:5], 0, false, 0},
		{"letters", secret, "12a456", 0, false, 0},
		{"unicode digits", secret, "١٢٣٤٥٦", 0, false, 0},
		{"empty", secret, "", 0, false, 0},
		{"bad secret", "not base32!", code(s), 0, false, 0},
		{"short secret", "AAAAAAAA", code(s), 0, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			step, ok := Validate(tc.secret, tc.code, now, tc.lastUsed)
			if ok != tc.wantOK || (ok && step != tc.wantStep) {
				t.Fatalf("Validate = %d, %v; want %d, %v", step, ok, tc.wantStep, tc.wantOK)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if len(a) != 32 || strings.Contains(a, "=") || a == b {
		t.Fatalf("secrets %q, %q: want 32 distinct unpadded base32 chars", a, b)
	}
	if k, err := decodeSecret(a); err != nil || len(k) != SecretSize {
		t.Fatalf("decode: %d bytes, %v", len(k), err)
	}
}

func TestURIAndQR(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	uri := URI(secret, "dr.who@clinic.example")
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/OpenVisit:dr.who@clinic.example" {
		t.Fatalf("uri %s: bad scheme/type/label", uri)
	}
	q := u.Query()
	for k, want := range map[string]string{"secret": secret, "issuer": "OpenVisit", "algorithm": "SHA1", "digits": "6", "period": "30"} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := URI(secret, "a:b c"); !strings.HasPrefix(got, "otpauth://totp/OpenVisit:a%3Ab%20c?") {
		t.Errorf("colon and space in account not escaped: %s", got)
	}

	img, err := QRPNG(uri)
	if err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("QR is not a PNG: %v", err)
	}
	if b := m.Bounds(); b.Dx() != b.Dy() || b.Dx() < 200 {
		t.Fatalf("QR image %v: want a square of at least 200 px", b)
	}
}

func FuzzTOTPValidate(f *testing.F) {
	f.Add(rfcSecret, "287082", int64(59), int64(0))
	f.Add("JBSWY3DPEHPK3PXP", "000000", int64(1700000000), int64(56666666))
	f.Add("", "", int64(-1), int64(-1))
	f.Add("====", "12345\x00", int64(1<<62), int64(1<<62))
	f.Fuzz(func(t *testing.T, secret, code string, unix, lastUsed int64) {
		now := time.Unix(unix, 0)
		step, ok := Validate(secret, code, now, lastUsed)
		if !ok {
			return
		}
		if step <= lastUsed {
			t.Fatalf("accepted step %d at or below lastUsed %d", step, lastUsed)
		}
		if d := step - Step(now); d < -Skew || d > Skew {
			t.Fatalf("accepted step %d, %d away from now", step, d)
		}
		if len(code) != Digits {
			t.Fatalf("accepted %q", code)
		}
		if _, ok := Validate(secret, code, now, step); ok {
			t.Fatal("replay accepted")
		}
	})
}
