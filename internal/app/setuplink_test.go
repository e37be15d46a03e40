package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/openvisit/openvisit/internal/auth/totp"
)

// setupSecret takes the secret out of a setup link (it rides in the
// fragment).
func setupSecret(t *testing.T, link string) string {
	t.Helper()
	_, secret, ok := strings.Cut(link, "#token=")
	if !ok {
		t.Fatalf("setup link %q has no #token=", link)
	}
	return secret
}

// Disabling a user voids their unused setup links: an invite link (even
// half-used: enrolment begun) and an MFA-reset link stop working, and
// re-enabling the user does not revive them. The redemption path itself
// refuses a disabled user's link.
func TestDisableVoidsSetupLink(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	adm := s.enrol(t, "admin@clinic.test", "admin")
	ac := s.newClient(t)
	ac.mustLogin(adm)

	t.Run("invite link, enrolment begun", func(t *testing.T) { s.disableMidEnrolment(t, ac) })

	t.Run("MFA reset link", func(t *testing.T) {
		prov := s.enrol(t, "reset@clinic.test", "provider")
		var reset struct {
			SetupLink string `json:"setup_link"`
		}
		r := ac.do("POST", "/api/v1/admin/users/"+string(prov.ID)+"/reset-mfa", struct{}{})
		if r.Status != 200 {
			t.Fatalf("reset-mfa: %d %s", r.Status, r.Body)
		}
		r.decode(t, &reset)
		if r := ac.do("POST", "/api/v1/admin/users/"+string(prov.ID)+"/disable", struct{}{}); r.Status != 200 {
			t.Fatalf("disable: %d %s", r.Status, r.Body)
		}
		s.setupRefused(t, setupSecret(t, reset.SetupLink), "disabled after an MFA reset")
	})

	t.Run("redemption refuses a disabled user", func(t *testing.T) {
		// A link left unused by any other path (here: the row is disabled
		// directly) is still refused where links are redeemed.
		var inv struct {
			User      struct{ ID string }
			SetupLink string `json:"setup_link"`
		}
		ac.do("POST", "/api/v1/admin/users", map[string]string{"email": "direct@clinic.test", "role": "provider"}).decode(t, &inv)
		if _, err := s.Pool.Exec(ctx, `UPDATE users SET disabled_at = now() WHERE id = $1`, inv.User.ID); err != nil {
			t.Fatal(err)
		}
		s.setupRefused(t, setupSecret(t, inv.SetupLink), "disabled in the database")
	})
}

// setupRefused: both steps of setup with secret's link are refused as
// link_invalid (what says which link, for the message).
func (s *server) setupRefused(t *testing.T, secret, what string) {
	t.Helper()
	c := s.newClient(t)
	for _, step := range []string{"begin", "complete"} {
		r := c.do("POST", "/api/v1/setup/"+step, map[string]string{"token": secret, "password": testPassword, "code": "000000"})
		if r.Status != 404 || r.code() != "link_invalid" {
			t.Errorf("%s: setup %s = %d %q, want 404 link_invalid", what, step, r.Status, r.code())
		}
	}
}

// disableMidEnrolment: the admin (ac) invites a user who begins enrolling
// and is then disabled; finishing is refused, before and after the user
// is enabled again, and the user got no password or authenticator.
func (s *server) disableMidEnrolment(t *testing.T, ac *client) {
	var inv struct {
		User      struct{ ID string }
		SetupLink string `json:"setup_link"`
	}
	r := ac.do("POST", "/api/v1/admin/users", map[string]string{"email": "leaver@clinic.test", "name": "Leaver", "role": "provider"})
	if r.Status != 201 {
		t.Fatalf("invite: %d %s", r.Status, r.Body)
	}
	r.decode(t, &inv)
	secret := setupSecret(t, inv.SetupLink)
	// The invitee starts enrolling: the pending authenticator key waits
	// for its first code.
	holder := s.newClient(t)
	var begin struct{ Secret string }
	if r := holder.do("POST", "/api/v1/setup/begin", map[string]string{"token": secret}); r.Status != 200 {
		t.Fatalf("begin: %d %s", r.Status, r.Body)
	} else {
		r.decode(t, &begin)
	}
	if r := ac.do("POST", "/api/v1/admin/users/"+inv.User.ID+"/disable", struct{}{}); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	// Finishing with a right code and a good password is refused.
	code, _ := totp.Code(begin.Secret, s.Clock.Now())
	r = holder.do("POST", "/api/v1/setup/complete", map[string]string{"token": secret, "password": testPassword, "code": code})
	if r.Status != 404 || r.code() != "link_invalid" {
		t.Errorf("complete after disable: %d %s, want 404 link_invalid", r.Status, r.Body)
	}
	s.setupRefused(t, secret, "disabled")
	if r := ac.do("POST", "/api/v1/admin/users/"+inv.User.ID+"/enable", struct{}{}); r.Status != 200 {
		t.Fatalf("enable: %d %s", r.Status, r.Body)
	}
	s.setupRefused(t, secret, "re-enabled")
	var enrolled bool
	if err := s.Pool.QueryRow(context.Background(), `SELECT mfa_enrolled_at IS NOT NULL OR password_hash IS NOT NULL FROM users WHERE id = $1`,
		inv.User.ID).Scan(&enrolled); err != nil || enrolled {
		t.Errorf("the disabled invitee got a password or authenticator (%v)", err)
	}
}
