package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/testenv"
)

// TestE2EOIDCSignIn: a provider signs in with the clinic's account — the
// sign-in page's button, the real identity provider's login page
// (deploy/dev/devidp), and back — and lands on the provider page, with an
// account created just in time from their group.
func TestE2EOIDCSignIn(t *testing.T) {
	idp := testenv.OIDC(t)
	var b8 [6]byte
	_, _ = rand.Read(b8[:])
	person := testenv.IdPUser{Username: "e2e-" + hex.EncodeToString(b8[:]), Password: "pw-" + hex.EncodeToString(b8[:]),
		Name: "Dr E2E", Groups: []string{"openvisit-providers"}, MFA: true}
	person.Email = person.Username + "@clinic.test"
	idp.AddUser(t, person)
	srv := StartServer(t, func(c *config.Config) {
		c.OIDC.Issuers = []config.OIDCIssuer{{ID: "clinic", Name: "the clinic's account", URL: idp.Issuer,
			ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, CAFile: idp.CAFile,
			ProviderGroups: []string{"openvisit-providers"}, AdminGroups: []string{"openvisit-admins"}}}
	})
	ctx := t.Context()
	b := NewBrowser(t, WithName("provider"))
	b.Navigate(t, srv.URL+"/signin")
	b.WaitFor(t, ctx, `document.body.dataset.state === 'ready'`, pageTimeout)
	if got := Eval[string](t, b, `document.querySelector('#sso-buttons a')?.textContent || ''`); got != "Sign in with the clinic's account" {
		t.Fatalf("sign-in button = %q", got)
	}
	screenshot(t, b, "oidc-signin.png")
	b.Click(t, "#sso-buttons a")
	// The identity provider's own login page.
	b.WaitFor(t, ctx, `location.origin === `+strconv.Quote(idp.Issuer)+` && !!document.getElementById('username')`, pageTimeout)
	b.Fill(t, "#username", person.Username)
	b.Fill(t, "#password", person.Password)
	b.Click(t, "#submit")
	b.WaitFor(t, ctx, `location.origin === `+strconv.Quote(srv.URL)+` && location.pathname === '/provider' && document.body.dataset.state === 'ready'`, pageTimeout)
	if email := Eval[string](t, b, `fetch('/api/v1/auth/session').then((r) => r.json()).then((v) => v.kind + ' ' + v.email)`); email != "provider "+person.Email {
		t.Fatalf("session after the identity provider = %q", email)
	}

	pool, err := pgxpool.New(ctx, srv.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var role string
	var logins, links int
	if err := pool.QueryRow(ctx, `SELECT u.role,
		(SELECT count(*) FROM audit_events a WHERE a.action = 'auth.login' AND a.outcome = 'success' AND a.actor_id = u.id::text AND a.reason LIKE 'oidc clinic%'),
		(SELECT count(*) FROM oidc_links l WHERE l.user_id = u.id AND l.refresh_token_enc IS NOT NULL)
		FROM users u WHERE u.email = $1`, person.Email).Scan(&role, &logins, &links); err != nil {
		t.Fatal(err)
	}
	if role != "provider" || logins != 1 || links != 1 {
		t.Errorf("account %s, %d audited sign-ins, %d links with a refresh token; want provider, 1, 1", role, logins, links)
	}
}
