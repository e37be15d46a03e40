package app_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/store"
)

func TestLoginLockout(t *testing.T) {
	s := startServer(t)
	u := s.enrol(t, "p@clinic.test", "provider")
	adm := s.enrol(t, "admin@clinic.test", "admin")
	c := s.newClient(t)
	wrong := func() response {
		t.Helper()
		code, _ := totp.Code(u.Secret, s.Clock.Now())
		return c.do("POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": "not the password at all", "code": code})
	}

	// An unknown account and a wrong password get the same answer.
	unknown := c.do("POST", "/api/v1/auth/login", map[string]string{"email": "nobody@clinic.test", "password": "not the password at all", "code": "123456"})
	first := wrong()
	if unknown.Status != 401 || first.Status != 401 || unknown.code() != "invalid_credentials" ||
		!bytes.Equal(stripRequestID(unknown.Body), stripRequestID(first.Body)) {
		t.Fatalf("unknown account: %d %s; wrong password: %d %s — want identical 401 bodies", unknown.Status, unknown.Body, first.Status, first.Body)
	}

	for i := 2; i <= throttle.FreeFailures; i++ {
		if r := wrong(); r.Status != 401 {
			t.Fatalf("failure %d: %d", i, r.Status)
		}
	}
	// After 5 failures, backoff: even the right credentials wait.
	r := c.login(u)
	if r.Status != 401 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("sign-in during backoff = %d (Retry-After %q), want 401 with Retry-After", r.Status, r.Header.Get("Retry-After"))
	}
	if n := s.auditCount(t, "auth.login", "denied", "throttled"); n != 1 {
		t.Errorf("%d throttled sign-ins audited, want 1", n)
	}
	// Keep failing, waiting out each backoff, until the lock at 20.
	for i := throttle.FreeFailures + 1; i <= throttle.LockAfter; i++ {
		s.Clock.Advance(throttle.Delay(i-1) + time.Second)
		if r := wrong(); r.Status != 401 {
			t.Fatalf("failure %d: %d", i, r.Status)
		}
	}
	s.Clock.Advance(24 * time.Hour)
	if r := c.login(u); r.Status != 401 {
		t.Fatalf("a locked account signed in: %d", r.Status)
	}
	if n := s.auditCount(t, "auth.login", "failure", ""); n != throttle.LockAfter+1 { // +1: the unknown account
		t.Errorf("%d failed sign-ins audited, want %d", n, throttle.LockAfter+1)
	}
	if n := s.auditCount(t, "auth.lock", "success", ""); n != 1 {
		t.Errorf("%d lock entries audited, want 1", n)
	}
	var alerts int
	_ = s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM alerts WHERE kind = 'account_locked' AND subject = $1`, string(u.ID)).Scan(&alerts)
	if alerts != 1 {
		t.Errorf("%d account_locked alerts, want 1", alerts)
	}

	// An admin unlocks; the right credentials work again.
	ac := s.newClient(t)
	ac.mustLogin(adm)
	if r := ac.do("POST", "/api/v1/admin/users/"+string(u.ID)+"/unlock", struct{}{}); r.Status != 200 {
		t.Fatalf("unlock: %d %s", r.Status, r.Body)
	}
	if r := c.login(u); r.Status != 200 {
		t.Fatalf("sign-in after unlock: %d %s", r.Status, r.Body)
	}
}

func stripRequestID(b []byte) []byte {
	i := bytes.Index(b, []byte(`"request_id"`))
	if i < 0 {
		return b
	}
	return b[:i]
}

func TestTOTPReplayRejected(t *testing.T) {
	s := startServer(t)
	u := s.enrol(t, "p@clinic.test", "provider")
	c := s.newClient(t)
	code, _ := totp.Code(u.Secret, s.Clock.Now())
	login := func(code string) int {
		return c.do("POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password, "code": code}).Status
	}
	if st := login(code); st != 200 {
		t.Fatalf("first use of a code: %d", st)
	}
	// The same code, within its window, is refused: an accepted step is
	// never accepted again (someone who watched it typed gets nothing).
	if st := login(code); st != 401 {
		t.Fatalf("replayed code: %d, want 401", st)
	}
	// The previous step's code is within ±1 tolerance but older than the
	// used one: refused too.
	prev, _ := totp.Code(u.Secret, s.Clock.Now().Add(-totp.Period))
	if st := login(prev); st != 401 {
		t.Fatalf("an older step after a newer one was used: %d, want 401", st)
	}
	s.Clock.Advance(totp.Period)
	next, _ := totp.Code(u.Secret, s.Clock.Now())
	if st := login(next); st != 200 {
		t.Fatalf("the next step's code: %d, want 200", st)
	}
	// A recovery code works once.
	if r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password, "recovery_code": u.Recovery[0]}); r.Status != 200 {
		t.Fatalf("recovery code: %d %s", r.Status, r.Body)
	}
	if r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": u.Email, "password": u.Password, "recovery_code": u.Recovery[0]}); r.Status != 401 {
		t.Fatalf("reused recovery code: %d, want 401", r.Status)
	}
}

func TestSessionIdleLogoff(t *testing.T) {
	s := startServer(t)
	u := s.enrol(t, "p@clinic.test", "provider")

	t.Run("idle", func(t *testing.T) {
		c := s.newClient(t)
		c.mustLogin(u) // advances the clock by one TOTP period
		for range 3 {
			s.Clock.Advance(14 * time.Minute)
			if r := c.do("GET", "/api/v1/visits", nil); r.Status != 200 {
				t.Fatalf("active session refused: %d", r.Status)
			}
		}
		// A page polling its session does not keep it alive.
		s.Clock.Advance(10 * time.Minute)
		if r := c.do("GET", "/api/v1/auth/session", nil); r.Status != 200 {
			t.Fatalf("session poll: %d", r.Status)
		}
		s.Clock.Advance(5*time.Minute + time.Second)
		if r := c.do("GET", "/api/v1/visits", nil); r.Status != 401 {
			t.Fatalf("after 15 idle minutes: %d, want 401", r.Status)
		}
		if n := s.auditCount(t, "session.expire", "success", "idle"); n != 1 {
			t.Errorf("%d idle expiries audited, want 1", n)
		}
	})

	t.Run("absolute", func(t *testing.T) {
		c := s.newClient(t)
		c.mustLogin(u)
		start := s.Clock.Now()
		for s.Clock.Now().Sub(start) < 12*time.Hour-15*time.Minute {
			s.Clock.Advance(10 * time.Minute)
			if r := c.do("POST", "/api/v1/auth/keepalive", struct{}{}); r.Status != 200 {
				t.Fatalf("keepalive at %s: %d", s.Clock.Now().Sub(start), r.Status)
			}
		}
		s.Clock.Advance(15 * time.Minute)
		if r := c.do("GET", "/api/v1/visits", nil); r.Status != 401 {
			t.Fatalf("after 12 hours: %d, want 401", r.Status)
		}
		if n := s.auditCount(t, "session.expire", "success", "absolute"); n != 1 {
			t.Errorf("%d absolute expiries audited, want 1", n)
		}
	})

	t.Run("logout and everywhere", func(t *testing.T) {
		a, b := s.newClient(t), s.newClient(t)
		a.mustLogin(u)
		b.mustLogin(u)
		if r := a.do("POST", "/api/v1/auth/logout", struct{}{}); r.Status != 200 {
			t.Fatalf("logout: %d", r.Status)
		}
		if r := a.do("GET", "/api/v1/visits", nil); r.Status != 401 {
			t.Fatalf("after logout: %d", r.Status)
		}
		if r := b.do("GET", "/api/v1/visits", nil); r.Status != 200 {
			t.Fatalf("the other session after one logout: %d", r.Status)
		}
		a.mustLogin(u)
		if r := a.do("POST", "/api/v1/auth/logout-all", struct{}{}); r.Status != 200 {
			t.Fatalf("logout-all: %d", r.Status)
		}
		if r := b.do("GET", "/api/v1/visits", nil); r.Status != 401 {
			t.Fatalf("the other session after sign out everywhere: %d", r.Status)
		}
	})
}

// Reloading the setup page must not invalidate a QR code already scanned.
func TestSetupBeginIsStable(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	u, err := store.CreateUser(ctx, s.Pool, "new@clinic.test", "New", "provider")
	if err != nil {
		t.Fatal(err)
	}
	link, err := store.CreateSetupLink(ctx, s.Pool, u.ID, store.PurposeInvite, s.Clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := s.newClient(t)
	var first, second struct{ Secret string }
	c.do("POST", "/api/v1/setup/begin", map[string]string{"token": link}).decode(t, &first)
	c.do("POST", "/api/v1/setup/begin", map[string]string{"token": link}).decode(t, &second)
	if first.Secret == "" || first.Secret != second.Secret {
		t.Fatalf("setup/begin twice gave %q then %q; want the same pending secret", first.Secret, second.Secret)
	}
	// A weak password changes nothing: the link and the pending secret stay.
	code, _ := totp.Code(first.Secret, s.Clock.Now())
	if r := c.do("POST", "/api/v1/setup/complete", map[string]string{"token": link, "password": "password1234", "code": code}); r.code() != "weak_password" {
		t.Fatalf("weak password: %d %s", r.Status, r.Body)
	}
	if r := c.do("POST", "/api/v1/setup/complete", map[string]string{"token": link, "password": testPassword, "code": code}); r.Status != 200 {
		t.Fatalf("complete after a refused attempt: %d %s", r.Status, r.Body)
	}
}
