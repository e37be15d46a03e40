package sso_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/sso"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/testenv"
)

// fixture is an sso.Service on a fresh database, configured for the dev
// OpenID provider (deploy/dev/devidp) with its groups mapped.
type fixture struct {
	svc *sso.Service
	si  *signin.Service
	db  *store.DB
	idp testenv.IdP

	mu   sync.Mutex
	log  []audit.Event
	skew time.Duration // added to the wall clock (TOTP steps)
}

func (f *fixture) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return time.Now().Add(f.skew) }

const publicURL = "https://127.0.0.1:1" // the callback is never served: the test reads the redirect

func newFixture(t *testing.T) *fixture {
	t.Helper()
	idp := testenv.OIDC(t)
	f := &fixture{db: storetest.DB(t), idp: idp}
	sealer, err := keys.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	env := store.Env{DB: f.db, Clock: f.now}
	record := func(_ context.Context, e audit.Event) { f.mu.Lock(); f.log = append(f.log, e); f.mu.Unlock() }
	f.si = signin.New(signin.Params{Env: env, Sealer: sealer, Staff: session.StaffPolicy, Patient: session.PatientPolicy, Record: record})
	cfg := config.OIDC{Issuers: []config.OIDCIssuer{{ID: "clinic", Name: "Clinic", URL: idp.Issuer, ClientID: idp.ClientID,
		ClientSecret: idp.ClientSecret, CAFile: idp.CAFile, ProviderGroups: []string{"doctors"}, AdminGroups: []string{"it"}}}}
	f.svc = sso.New(sso.Params{Env: env, Issuers: cfg.IssuersWithDefaults(), PublicURL: publicURL, Sealer: sealer,
		Signin: f.si, Accounts: accounts.New(env), Record: record})
	return f
}

// person makes a user at the provider with a unique username.
func (f *fixture) person(t *testing.T, groups []string, mfa bool) testenv.IdPUser {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	u := testenv.IdPUser{Username: "t-" + hex.EncodeToString(b[:]), Password: "pw-" + hex.EncodeToString(b[:]),
		Name: "Test Person", Groups: groups, MFA: mfa}
	u.Email = u.Username + "@clinic.test"
	f.idp.AddUser(t, u)
	return u
}

// signIn runs the whole authorization code flow against the provider — its
// real login page — and finishes it with the callback's query.
func (f *fixture) signIn(t *testing.T, u testenv.IdPUser) (sso.Result, error) {
	t.Helper()
	ctx := context.Background()
	authURL, cookie, err := f.svc.Begin(ctx, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	q := f.loginAtIdP(t, authURL, u)
	return f.svc.Finish(ctx, cookie, q, signin.Source{IP: "127.0.0.1", UserAgent: "test"})
}

// loginAtIdP follows authURL to the provider's login page, submits it, and
// returns the query the provider redirects back to publicURL with.
func (f *fixture) loginAtIdP(t *testing.T, authURL string, u testenv.IdPUser) url.Values {
	t.Helper()
	pem, err := os.ReadFile(f.idp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	var back *url.URL
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(r.URL.String(), publicURL) {
				back = r.URL
				return http.ErrUseLastResponse
			}
			return nil
		}}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("provider login page: %s at %s", resp.Status, resp.Request.URL.Path)
	}
	resp, err = c.PostForm(f.idp.Issuer+"/login", url.Values{"id": {id}, "username": {u.Username}, "password": {u.Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if back == nil {
		t.Fatalf("provider did not redirect back after login: %s", resp.Status)
	}
	return back.Query()
}

func (f *fixture) userByEmail(t *testing.T, email string) (store.User, error) {
	t.Helper()
	return store.UserByEmail(context.Background(), f.db, email)
}

func (f *fixture) audited(action string, outcome audit.Outcome) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.log {
		if e.Action == action && e.Outcome == outcome {
			n++
		}
	}
	return n
}

func TestOIDCGroupMapping(t *testing.T) {
	cfg := config.OIDCIssuer{ProviderGroups: []string{"doctors", "nurses"}, AdminGroups: []string{"it"}}
	for _, tc := range []struct {
		groups []string
		want   string
	}{
		{[]string{"doctors"}, store.RoleProvider},
		{[]string{"nurses", "cafeteria"}, store.RoleProvider},
		{[]string{"doctors", "it"}, store.RoleAdmin}, // admin wins
		{[]string{"it"}, store.RoleAdmin},
		{[]string{"cafeteria"}, ""},
		{[]string{"Doctors"}, ""}, // exact match only
		{nil, ""},
	} {
		if got := sso.RoleFor(cfg, tc.groups); got != tc.want {
			t.Errorf("RoleFor(%v) = %q, want %q", tc.groups, got, tc.want)
		}
	}

	// Through the real provider: accounts are created just in time only for
	// mapped groups, with the mapped role, and follow the groups later.
	f := newFixture(t)
	doc := f.person(t, []string{"doctors"}, true)
	res, err := f.signIn(t, doc)
	if err != nil || res.Opened.Token == "" {
		t.Fatalf("mapped provider: %+v, %v", res, err)
	}
	if u, err := f.userByEmail(t, doc.Email); err != nil || u.Role != store.RoleProvider || u.ID != res.Opened.User.ID {
		t.Fatalf("just-in-time account: %+v, %v", u, err)
	}
	stranger := f.person(t, []string{"cafeteria"}, true)
	if _, err := f.signIn(t, stranger); !errors.Is(err, sso.ErrNotMapped) {
		t.Fatalf("unmapped person: err = %v, want ErrNotMapped", err)
	}
	if _, err := f.userByEmail(t, stranger.Email); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an account was created for an unmapped person: %v", err)
	}
	if f.audited(sso.ActionMap, audit.Denied) != 1 || f.audited(sso.ActionMap, audit.Success) != 1 {
		t.Errorf("mapping decisions not audited: %+v", f.log)
	}
	// Moved to the admin group at the provider: the next sign-in is an admin's.
	doc.Groups = []string{"doctors", "it"}
	f.idp.AddUser(t, doc)
	if res, err := f.signIn(t, doc); err != nil || res.Opened.User.Role != store.RoleAdmin {
		t.Fatalf("after the group change: %+v, %v", res.Opened.User, err)
	}
}

func TestOIDCWithoutIdPMFAAsksTheLocalFactor(t *testing.T) {
	f := newFixture(t)
	p := f.person(t, []string{"doctors"}, false)
	// A just-in-time account has no local TOTP: nothing can stand in for
	// the provider's MFA, so the sign-in is refused.
	if _, err := f.signIn(t, p); !errors.Is(err, signin.ErrNoSecondFactor) {
		t.Fatalf("err = %v, want ErrNoSecondFactor", err)
	}
	if f.audited(signin.ActionLogin, audit.Denied) != 1 {
		t.Errorf("refusal not audited: %+v", f.log)
	}
}

// signedInDoctor is a fixture with a person of the "doctors" group (MFA
// asserted) signed in.
func signedInDoctor(t *testing.T) (*fixture, testenv.IdPUser, sso.Result) {
	t.Helper()
	f := newFixture(t)
	p := f.person(t, []string{"doctors"}, true)
	res, err := f.signIn(t, p)
	if err != nil {
		t.Fatal(err)
	}
	return f, p, res
}

func TestOIDCSweepDisablesDeprovisionedAccount(t *testing.T) {
	f, p, res := signedInDoctor(t)
	ctx := context.Background()
	rep, err := f.svc.Sweep(ctx, 0)
	if err != nil || rep.Vouched != 1 || rep.Disabled != 0 {
		t.Fatalf("sweep while the provider vouches: %+v, %v", rep, err)
	}
	if _, err := store.SessionByHash(ctx, f.db, res.Opened.Hash); err != nil {
		t.Fatal(err)
	}
	f.idp.DisableUser(t, p.Username)
	rep, err = f.svc.Sweep(ctx, 0)
	if err != nil || rep.Disabled != 1 {
		t.Fatalf("sweep after deprovisioning: %+v, %v", rep, err)
	}
	u, err := f.userByEmail(t, p.Email)
	if err != nil || u.DisabledAt == nil {
		t.Fatalf("account not disabled: %+v, %v", u, err)
	}
	sess, err := store.SessionByHash(ctx, f.db, res.Opened.Hash)
	if err != nil || sess.RevokedAt == nil {
		t.Fatalf("session not ended: %+v, %v", sess, err)
	}
	if f.audited(sso.ActionSweep, audit.Denied) != 1 {
		t.Errorf("sweep refusal not audited")
	}
	// Nothing left to ask: the next sweep skips the disabled account.
	if rep, err := f.svc.Sweep(ctx, 0); err != nil || rep != (sso.SweepReport{}) {
		t.Fatalf("sweep after disabling: %+v, %v", rep, err)
	}
}

// TestOIDCKeyRotation: after the provider rotates its signing key, ID
// tokens signed with the new key verify (go-oidc fetches the JWKS again for
// a key ID it has not seen).
func TestOIDCKeyRotation(t *testing.T) {
	f := newFixture(t)
	p := f.person(t, []string{"doctors"}, true)
	if _, err := f.signIn(t, p); err != nil {
		t.Fatal(err)
	}
	f.idp.RotateKeys(t)
	if res, err := f.signIn(t, p); err != nil || res.Opened.Token == "" {
		t.Fatalf("sign-in after key rotation: %+v, %v", res, err)
	}
}

// TestOIDCLocalSecondFactor: when the provider does not assert MFA, an
// account with a local authenticator is asked for its code before any
// session opens; a wrong code is refused and counted, the right one opens
// the session.
func TestOIDCLocalSecondFactor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.person(t, []string{"doctors"}, false)
	// An existing account with the same (provider-verified) address and a
	// local TOTP, set up through its setup link.
	u, err := store.CreateUser(ctx, f.db, p.Email, "Dr Local", store.RoleProvider)
	if err != nil {
		t.Fatal(err)
	}
	link, err := store.CreateSetupLink(ctx, f.db, u.ID, store.PurposeInvite, f.now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.si.BeginSetup(ctx, link, signin.Source{})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.Code(e.Secret, f.now())
	if _, _, err := f.si.CompleteSetup(ctx, signin.Completion{Secret: link, Password: "violet tractor hums under 7 ravens", Code: code}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.skew = time.Minute // the next code is a new step
	f.mu.Unlock()

	res, err := f.signIn(t, p)
	if err != nil || res.Pending == "" || res.Opened.Token != "" {
		t.Fatalf("without the provider's MFA: %+v, %v; want a pending sign-in", res, err)
	}
	src := signin.Source{IP: "127.0.0.1"}
	if _, err := f.svc.CompleteSecondFactor(ctx, res.Pending, "000000", "", src); !errors.Is(err, signin.ErrBadCredentials) {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := f.svc.CompleteSecondFactor(ctx, "forged", code, "", src); !errors.Is(err, sso.ErrFlow) {
		t.Fatalf("forged pending state: %v", err)
	}
	code, _ = totp.Code(e.Secret, f.now())
	opened, err := f.svc.CompleteSecondFactor(ctx, res.Pending, code, "", src)
	if err != nil || opened.Token == "" || opened.User.ID != u.ID {
		t.Fatalf("right code: %+v, %v", opened.User, err)
	}
	if got, _ := store.UserByID(ctx, f.db, u.ID, false); got.FailedLogins != 0 {
		t.Errorf("the wrong code was not cleared by the success: %d", got.FailedLogins)
	}
}

// TestOIDCSweepFollowsGroups: the sweep reads the groups of the ID token a
// refresh returns. Moved to the admin group at the provider, the account
// becomes an admin's (its sessions end, as with any role change); taken
// out of every mapped group, it is disabled although the provider still
// vouches for the person.
func TestOIDCSweepFollowsGroups(t *testing.T) {
	f, p, res := signedInDoctor(t)
	ctx := context.Background()
	p.Groups = []string{"doctors", "it"}
	f.idp.AddUser(t, p)
	if rep, err := f.svc.Sweep(ctx, 0); err != nil || rep.Vouched != 1 || rep.Disabled != 0 {
		t.Fatalf("sweep after the move to the admin group: %+v, %v", rep, err)
	}
	u, err := f.userByEmail(t, p.Email)
	if err != nil || u.Role != store.RoleAdmin || u.DisabledAt != nil {
		t.Fatalf("after the move: %+v, %v", u, err)
	}
	if sess, err := store.SessionByHash(ctx, f.db, res.Opened.Hash); err != nil || sess.RevokedAt == nil {
		t.Fatalf("the provider's session outlived the role change: %+v, %v", sess, err)
	}

	p.Groups = []string{"cafeteria"}
	f.idp.AddUser(t, p)
	if rep, err := f.svc.Sweep(ctx, 0); err != nil || rep.Disabled != 1 {
		t.Fatalf("sweep after leaving every mapped group: %+v, %v", rep, err)
	}
	if u, err := f.userByEmail(t, p.Email); err != nil || u.DisabledAt == nil {
		t.Fatalf("account not disabled: %+v, %v", u, err)
	}
	if f.audited(sso.ActionSweep, audit.Denied) != 1 {
		t.Errorf("the disabling was not audited")
	}
}
