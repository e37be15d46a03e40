package signin_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

const goodPassword = "violet tractor hums under 7 ravens"

// fixture is a sign-in service on a fresh database with a settable clock
// and the refusals it recorded.
type fixture struct {
	svc *signin.Service
	db  *store.DB
	mu  sync.Mutex
	now time.Time
	log []audit.Event
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sealer, err := keys.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: storetest.DB(t), now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	f.svc = signin.New(signin.Params{Sealer: sealer, Staff: session.StaffPolicy, Patient: session.PatientPolicy,
		Record: func(_ context.Context, e audit.Event) { f.mu.Lock(); f.log = append(f.log, e); f.mu.Unlock() },
		Env:    store.Env{DB: f.db, Clock: func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }}})
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func (f *fixture) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.log {
		out = append(out, e.Action+" "+e.Reason)
	}
	return out
}

// enrolled makes a staff user and sets them up through a setup link, as a
// new provider does; it returns their TOTP secret and recovery codes.
func (f *fixture) enrolled(t *testing.T, email string) (store.User, string, []string) {
	t.Helper()
	ctx := context.Background()
	u := storetest.User(t, f.db, email, "Dr Test", store.RoleProvider)
	link, err := store.CreateSetupLink(ctx, f.db, u.ID, store.PurposeInvite, f.now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.svc.BeginSetup(ctx, link, signin.Source{})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.Code(e.Secret, f.now)
	u, codes, err := f.svc.CompleteSetup(ctx, signin.Completion{Secret: link, Password: goodPassword, Code: code})
	if err != nil {
		t.Fatal(err)
	}
	return u, e.Secret, codes
}

// TestLogin: a sign-in needs the password and a fresh second factor; every
// failure is the same ErrBadCredentials; a code is never accepted twice and
// a recovery code only once.
func TestLogin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, secret, recovery := f.enrolled(t, "dr.login@clinic.test")
	f.advance(time.Minute) // past the step enrolment used
	code, _ := totp.Code(secret, f.now)
	tests := []struct {
		name string
		a    signin.Attempt
		want error
	}{
		{"unknown account", signin.Attempt{Email: "nobody@clinic.test", Password: goodPassword, Code: code}, signin.ErrBadCredentials},
		{"wrong password", signin.Attempt{Email: u.Email, Password: "wrong password entirely", Code: code}, signin.ErrBadCredentials},
		{"wrong code", signin.Attempt{Email: u.Email, Password: goodPassword, Code: "000000"}, signin.ErrBadCredentials},
		{"too long", signin.Attempt{Email: u.Email, Password: goodPassword, Code: string(make([]byte, signin.MaxCode+1))}, signin.ErrTooLong},
		{"ok", signin.Attempt{Email: "  DR.LOGIN@clinic.test ", Password: goodPassword, Code: code}, nil},
		{"code replayed", signin.Attempt{Email: u.Email, Password: goodPassword, Code: code}, signin.ErrBadCredentials},
		{"recovery code", signin.Attempt{Email: u.Email, Password: goodPassword, RecoveryCode: recovery[0]}, nil},
		{"recovery code again", signin.Attempt{Email: u.Email, Password: goodPassword, RecoveryCode: recovery[0]}, signin.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.svc.Login(ctx, tt.a)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Login: %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			if got.User.ID != u.ID || got.Token == "" || string(session.HashToken(got.Token)) != string(got.Hash) {
				t.Fatalf("Login opened %+v", got)
			}
			if _, err := f.svc.Session(ctx, got.Hash, signin.Source{}); err != nil {
				t.Errorf("the new session: %v", err)
			}
		})
	}
}

// TestLock: failures are throttled after a few, and the twentieth locks
// the account (audited once), after which even the right password is
// refused with no retry time.
func TestLock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, secret, _ := f.enrolled(t, "dr.lock@clinic.test")
	for i := 0; i < throttle.LockAfter; i++ {
		f.advance(throttle.MaxDelay)
		if _, err := f.svc.Login(ctx, signin.Attempt{Email: u.Email, Password: "not the password at all"}); !errors.Is(err, signin.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	got, err := store.UserByID(ctx, f.db, u.ID, false)
	if err != nil || got.LockedAt == nil {
		t.Fatalf("after %d failures: locked %v, %v", throttle.LockAfter, got.LockedAt, err)
	}
	locks := 0
	for _, a := range f.actions() {
		if a == signin.ActionLock+" 20 consecutive failures" {
			locks++
		}
	}
	if locks != 1 {
		t.Errorf("lock audited %d times: %q", locks, f.actions())
	}
	f.advance(time.Hour)
	code, _ := totp.Code(secret, f.now)
	_, err = f.svc.Login(ctx, signin.Attempt{Email: u.Email, Password: goodPassword, Code: code})
	var th *signin.ThrottledError
	if !errors.As(err, &th) || th.Retry != throttle.Forever || !errors.Is(err, signin.ErrBadCredentials) {
		t.Errorf("locked account: %v, want throttled forever", err)
	}
}

// TestUnknownAccountThrottled: guesses at an address with no account are
// throttled like a real account's.
func TestUnknownAccountThrottled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var err error
	for i := 0; i <= throttle.FreeFailures; i++ {
		_, err = f.svc.Login(ctx, signin.Attempt{Email: "ghost@clinic.test", Password: "whatever it is"})
	}
	var th *signin.ThrottledError
	if !errors.As(err, &th) || th.Retry <= 0 || th.Retry == throttle.Forever {
		t.Errorf("guess %d at an unknown address: %v, want a short wait", throttle.FreeFailures+1, err)
	}
}

// TestSetup: a setup link shows the same pending secret on reload, refuses
// a weak password and a wrong code without using the link up, and works
// once.
func TestSetup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := storetest.User(t, f.db, "dr.setup@clinic.test", "Dr Setup", store.RoleProvider)
	link, err := store.CreateSetupLink(ctx, f.db, u.ID, store.PurposeInvite, f.now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.BeginSetup(ctx, "not-a-link", signin.Source{}); !errors.Is(err, signin.ErrBadLink) {
		t.Errorf("unknown link: %v", err)
	}
	if _, _, err := f.svc.CompleteSetup(ctx, signin.Completion{Secret: link, Password: goodPassword, Code: "123456"}); !errors.Is(err, signin.ErrNotStarted) {
		t.Errorf("complete before begin: %v, want not started", err)
	}
	first, err := f.svc.BeginSetup(ctx, link, signin.Source{})
	if err != nil || !first.NeedsPassword || len(first.QR) == 0 {
		t.Fatalf("BeginSetup: %+v, %v", first, err)
	}
	again, err := f.svc.BeginSetup(ctx, link, signin.Source{})
	if err != nil || again.Secret != first.Secret {
		t.Errorf("reload shows another secret (%v)", err)
	}
	code, _ := totp.Code(first.Secret, f.now)
	for _, tc := range []struct {
		name string
		in   signin.Completion
		want error
	}{
		{"weak password", signin.Completion{Secret: link, Password: "password", Code: code}, signin.ErrWeakPassword},
		{"wrong code", signin.Completion{Secret: link, Password: goodPassword, Code: "000000"}, signin.ErrWrongCode},
		{"ok", signin.Completion{Secret: link, Password: goodPassword, Code: code}, nil},
		{"used", signin.Completion{Secret: link, Password: goodPassword, Code: code}, signin.ErrBadLink},
	} {
		_, codes, err := f.svc.CompleteSetup(ctx, tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err == nil && len(codes) != 10 {
			t.Errorf("%s: %d recovery codes", tc.name, len(codes))
		}
	}
}

// TestSessionExpiry: a session past its idle time is ended the first time
// it is seen (audited once); an unknown one is no session.
func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, secret, _ := f.enrolled(t, "dr.idle@clinic.test")
	f.advance(time.Minute)
	code, _ := totp.Code(secret, f.now)
	in, err := f.svc.Login(ctx, signin.Attempt{Email: u.Email, Password: goodPassword, Code: code})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Session(ctx, []byte("no such session hash"), signin.Source{}); !errors.Is(err, signin.ErrNoSession) {
		t.Errorf("unknown session: %v", err)
	}
	f.advance(session.StaffPolicy.Idle + time.Second)
	for i := 0; i < 2; i++ {
		if _, err := f.svc.Session(ctx, in.Hash, signin.Source{}); !errors.Is(err, signin.ErrSessionOver) {
			t.Errorf("idle session, look %d: %v", i+1, err)
		}
	}
	n := 0
	for _, a := range f.actions() {
		if a == signin.ActionSessionExpire+" idle" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("expiry audited %d times", n)
	}
}
