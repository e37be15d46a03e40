package signin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
)

// TestPasswordsOffExceptBreakGlass: with local passwords switched off for
// everyone but the break-glass admins, another account's right password
// and code are refused like an unknown account's, audited with why.
func TestPasswordsOffExceptBreakGlass(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, secret, _ := f.enrolled(t, "dr.sso@clinic.test")
	f.advance(time.Minute)
	sealer, _ := keys.NewSealer(make([]byte, 32))
	var reasons []string
	svc := signin.New(signin.Params{Sealer: sealer, Staff: session.StaffPolicy, Patient: session.PatientPolicy,
		Env:             store.Env{DB: f.db, Clock: func() time.Time { return f.now }},
		Record:          func(_ context.Context, e audit.Event) { reasons = append(reasons, e.Reason) },
		PasswordAllowed: func(x store.User) bool { return x.ID != u.ID }})
	code, _ := totp.Code(secret, f.now)
	if _, err := svc.Login(ctx, signin.Attempt{Email: u.Email, Password: goodPassword, Code: code}); !errors.Is(err, signin.ErrBadCredentials) {
		t.Fatalf("password sign-in with passwords off: %v", err)
	}
	if len(reasons) != 1 || reasons[0] != "local passwords off" {
		t.Errorf("audited reasons %q", reasons)
	}
	// The same account through an identity provider that asserted MFA.
	if _, err := svc.OpenFederated(ctx, signin.Federated{User: u, Issuer: "clinic", MFA: true}); err != nil {
		t.Fatalf("federated sign-in: %v", err)
	}
}
