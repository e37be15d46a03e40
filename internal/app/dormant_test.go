package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// Every sign-in records its time, the admin's user list shows it, and the
// dormant list names the accounts that can sign in but have not for
// auth.dormant_days (or ?days=N) — counting from creation for one that
// never has — and not disabled ones.
func TestDormantAccounts(t *testing.T) {
	s := startServer(t)
	active := s.enrol(t, "active@clinic.test", "provider")
	never := s.enrol(t, "never@clinic.test", "provider")
	gone := s.enrol(t, "gone@clinic.test", "provider")
	adm := s.enrol(t, "admin@clinic.test", "admin")
	signedIn := s.Clock.Now()
	s.newClient(t).mustLogin(active)
	now := time.Now()
	if err := store.SetDisabled(context.Background(), s.Pool, gone.ID, &now); err != nil {
		t.Fatal(err)
	}

	s.Clock.Advance(100 * 24 * time.Hour)
	fresh := s.enrol(t, "fresh@clinic.test", "provider")
	// created_at is the database's clock; this account is new by the test's.
	if _, err := s.Pool.Exec(context.Background(), `UPDATE users SET created_at = $2 WHERE id = $1`, string(fresh.ID), s.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	ac := s.newClient(t)
	ac.mustLogin(adm)

	dormant := func(query string) (int, []string) {
		r := ac.do("GET", "/api/v1/admin/users/dormant"+query, nil)
		if r.Status != 200 {
			t.Fatalf("dormant%s: %d %s", query, r.Status, r.Body)
		}
		var out struct {
			Days  int
			Users []signaling.UserView
		}
		r.decode(t, &out)
		var emails []string
		for _, u := range out.Users {
			emails = append(emails, u.Email)
		}
		return out.Days, emails
	}
	days, got := dormant("")
	if days != 90 || !slices.Equal(got, []string{never.Email, active.Email}) {
		t.Errorf("dormant (default) = %d days %v, want 90 days [%s %s] (the longest dormant first; not %s, %s, %s)",
			days, got, never.Email, active.Email, gone.Email, fresh.Email, adm.Email)
	}
	if _, got := dormant("?days=101"); len(got) != 0 {
		t.Errorf("dormant for 101 days = %v, want none", got)
	}
	if r := ac.do("GET", "/api/v1/admin/users/dormant?days=0", nil); r.Status != 400 {
		t.Errorf("days=0: %d, want 400", r.Status)
	}

	var list struct{ Users []signaling.UserView }
	ac.do("GET", "/api/v1/admin/users", nil).decode(t, &list)
	for _, u := range list.Users {
		switch u.Email {
		case active.Email:
			if u.LastSigninAt == nil || !u.LastSigninAt.Equal(signedIn) {
				t.Errorf("%s last sign-in %v, want %v", u.Email, u.LastSigninAt, signedIn)
			}
		case never.Email:
			if u.LastSigninAt != nil {
				t.Errorf("%s never signed in, shown %v", u.Email, u.LastSigninAt)
			}
		}
	}
}
