package signin_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// withPasskeys is a sign-in service whose relying party is
// https://clinic.test (registration options can be made).
func withPasskeys(t *testing.T, db *store.DB) *signin.Service {
	t.Helper()
	sealer, err := keys.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return signin.New(signin.Params{Env: store.Env{DB: db}, Sealer: sealer, Staff: session.StaffPolicy, Patient: session.PatientPolicy,
		Record:   func(context.Context, audit.Event) {},
		Passkeys: signin.PasskeyParams{RPID: "clinic.test", Origins: []string{"https://clinic.test"}}})
}

func storedPasskey(t *testing.T, db *store.DB, user ids.UserID, name string) string {
	t.Helper()
	cred := make([]byte, 32)
	_, _ = rand.Read(cred)
	id, err := store.AddPasskey(context.Background(), db, store.Passkey{UserID: user, CredentialID: cred, PublicKey: []byte{1},
		Name: name, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func names(t *testing.T, svc *signin.Service, user ids.UserID) string {
	t.Helper()
	keys, err := svc.Passkeys(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.Name)
	}
	return strings.Join(out, ",")
}

// A user keeps several passkeys, names and removes them (each change
// audited); another user's passkey is not found; names are checked; the
// number of passkeys is bounded; an MFA reset removes them all.
func TestPasskeysSeveralNamedRemoved(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	svc := withPasskeys(t, db)
	a := storetest.User(t, db, "a@clinic.test", "A", store.RoleProvider)
	b := storetest.User(t, db, "b@clinic.test", "B", store.RoleProvider)
	laptop := storedPasskey(t, db, a.ID, "Laptop")
	phone := storedPasskey(t, db, a.ID, "Phone")
	storedPasskey(t, db, a.ID, "Key")
	ev := audit.Event{ActorID: string(a.ID), ActorRole: "provider"}

	if err := svc.RenamePasskey(ctx, a.ID, phone, "  Work phone ", ev); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", signin.MaxPasskeyName+1), "tab\there", "bad\xffutf8"} {
		if err := svc.RenamePasskey(ctx, a.ID, phone, bad, ev); !errors.Is(err, signin.ErrPasskeyName) {
			t.Errorf("rename to %q: %v, want ErrPasskeyName", bad, err)
		}
	}
	if err := svc.RenamePasskey(ctx, b.ID, laptop, "Mine now", ev); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another user renames the passkey: %v, want ErrNotFound", err)
	}
	if err := svc.RemovePasskey(ctx, b.ID, laptop, ev); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another user removes the passkey: %v, want ErrNotFound", err)
	}
	if err := svc.RemovePasskey(ctx, a.ID, laptop, ev); err != nil {
		t.Fatal(err)
	}
	if got := names(t, svc, a.ID); got != "Work phone,Key" {
		t.Errorf("passkeys = %q, want Work phone,Key", got)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE actor_id = $1 AND action IN ('passkey.rename', 'passkey.remove')`,
		string(a.ID)).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d passkey changes audited (%v), want 2", n, err)
	}

	for range signin.MaxPasskeys - 2 {
		storedPasskey(t, db, a.ID, "More")
	}
	if _, err := svc.BeginRegistration(ctx, a.ID, nil); !errors.Is(err, signin.ErrTooManyPasskeys) {
		t.Errorf("registration past the limit: %v, want ErrTooManyPasskeys", err)
	}

	if err := store.ResetMFA(ctx, db, a.ID); err != nil {
		t.Fatal(err)
	}
	if got := names(t, svc, a.ID); got != "" {
		t.Errorf("after an MFA reset the passkeys are %q, want none", got)
	}
}

// A ceremony's answer that does not verify is refused as bad credentials
// and audited; a ceremony token is used once.
func TestPasskeyLoginRefusesBadAnswers(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	svc := withPasskeys(t, db)
	cer, err := svc.BeginAssertion(ctx, store.CeremonySignin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cer.Options), `"userVerification":"required"`) {
		t.Errorf("sign-in options do not require user verification: %s", cer.Options)
	}
	for _, answer := range []string{`{}`, `{"id":"x","rawId":"x","type":"public-key","response":{}}`, `not json`} {
		_, err := svc.PasskeyLogin(ctx, signin.PasskeyAttempt{Ceremony: cer.Token, Assertion: []byte(answer)})
		if !errors.Is(err, signin.ErrBadCredentials) {
			t.Errorf("answer %s: %v, want ErrBadCredentials", answer, err)
		}
	}
	if _, err := svc.BeginAssertion(ctx, "register"); !errors.Is(err, signin.ErrCeremony) {
		t.Errorf("begin with purpose register: %v, want ErrCeremony", err)
	}
}
