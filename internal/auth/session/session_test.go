package session

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != TokenLen || !WellFormed(plain) {
		t.Fatalf("token %d chars, well-formed %v", len(plain), WellFormed(plain))
	}
	if len(hash) != 32 || !bytes.Equal(hash, HashToken(plain)) {
		t.Fatal("hash is not SHA-256 of the token")
	}
	other, _, _ := NewToken()
	if other == plain {
		t.Fatal("two equal tokens")
	}
	for _, bad := range []string{"", plain[:21] + "\n" + plain[22:], plain[:42], plain + "A", strings.Repeat("+", 43), strings.Repeat("A", 42) + "B"} {
		if WellFormed(bad) {
			t.Errorf("WellFormed(%q) = true", bad)
		}
	}
}

func TestPolicyIdleAndAbsolute(t *testing.T) {
	created := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return created.Add(d) }
	tests := []struct {
		name     string
		p        Policy
		lastSeen time.Time
		now      time.Time
		want     error
	}{
		{"fresh", StaffPolicy, created, at(time.Minute), nil},
		{"idle just under", StaffPolicy, at(time.Hour), at(time.Hour + 15*time.Minute - time.Second), nil},
		{"idle at limit", StaffPolicy, at(time.Hour), at(time.Hour + 15*time.Minute), ErrIdleExpired},
		{"idle past", StaffPolicy, at(time.Hour), at(2 * time.Hour), ErrIdleExpired},
		{"patient idle 20m ok", PatientPolicy, at(time.Hour), at(time.Hour + 20*time.Minute), nil},
		{"patient idle 30m", PatientPolicy, at(time.Hour), at(time.Hour + 30*time.Minute), ErrIdleExpired},
		{"active but old", StaffPolicy, at(12*time.Hour - time.Minute), at(12 * time.Hour), ErrAbsoluteExpired},
		{"absolute wins over idle", StaffPolicy, created, at(13 * time.Hour), ErrAbsoluteExpired},
		{"patient absolute", PatientPolicy, at(12*time.Hour - time.Minute), at(12 * time.Hour), ErrAbsoluteExpired},
		{"lastSeen before created", StaffPolicy, created.Add(-time.Hour), at(time.Minute), nil},
		{"zero policy fails closed", Policy{}, created, created, ErrAbsoluteExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Check(created, tc.lastSeen, tc.now); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
				t.Fatalf("Check = %v, want %v", got, tc.want)
			}
		})
	}

	// A simulated clock: activity every 10 minutes keeps a staff session alive
	// until the absolute limit, and then nothing does.
	now, last := created, created
	for now.Sub(created) < 12*time.Hour-10*time.Minute {
		now = now.Add(10 * time.Minute)
		if err := StaffPolicy.Check(created, last, now); err != nil {
			t.Fatalf("active session ended at %v: %v", now.Sub(created), err)
		}
		last = now
	}
	if err := StaffPolicy.Check(created, last, at(12*time.Hour)); !errors.Is(err, ErrAbsoluteExpired) {
		t.Fatalf("at 12h: %v", err)
	}
}

func TestExpiresAt(t *testing.T) {
	created := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	if got, want := StaffPolicy.ExpiresAt(created, created.Add(time.Hour)), created.Add(time.Hour+15*time.Minute); !got.Equal(want) {
		t.Errorf("idle-bound: %v, want %v", got, want)
	}
	if got, want := StaffPolicy.ExpiresAt(created, created.Add(11*time.Hour+50*time.Minute)), created.Add(12*time.Hour); !got.Equal(want) {
		t.Errorf("absolute-bound: %v, want %v", got, want)
	}
}

func TestCookie(t *testing.T) {
	rec := httptest.NewRecorder()
	http.SetCookie(rec, Cookie("ov", "tok", 12*time.Hour))
	http.SetCookie(rec, ClearCookie("__Host-ov"))
	http.SetCookie(rec, Cookie("ov", "tok", 0))
	got := rec.Result().Header.Values("Set-Cookie")
	want := []string{
		"__Host-ov=tok; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict",
		"__Host-ov=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
		"__Host-ov=tok; Path=/; HttpOnly; Secure; SameSite=Strict",
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cookie %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if c := Cookie("ov", "x", time.Millisecond); c.MaxAge != 1 || c.Domain != "" {
		t.Errorf("sub-second max age rounds to %d, domain %q", c.MaxAge, c.Domain)
	}
}
