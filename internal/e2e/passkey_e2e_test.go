package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// onLocalhost serves the e2e server as https://localhost:PORT: a passkey's
// relying party ID is a host name, never an IP address.
func onLocalhost(c *config.Config) {
	c.PublicURL = strings.Replace(c.PublicURL, "://127.0.0.1:", "://localhost:", 1)
}

// addAuthenticator plugs a virtual platform authenticator (CTAP2, resident
// keys, user verification that succeeds: a laptop's fingerprint reader)
// into the browser through the DevTools WebAuthn domain.
func addAuthenticator(t *testing.T, b *Browser) webauthn.AuthenticatorID {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), DefaultTimeout)
	defer cancel()
	var id webauthn.AuthenticatorID
	err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		no := false
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{EnableUI: &no}); err != nil {
			return chromedp.Void{}, err
		}
		r, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true}})
		id = r.AuthenticatorID
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatalf("%s: add a virtual authenticator: %v", b.Name, err)
	}
	return id
}

func removeAuthenticator(t *testing.T, b *Browser, id webauthn.AuthenticatorID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), DefaultTimeout)
	defer cancel()
	err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id})
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatalf("%s: remove the virtual authenticator: %v", b.Name, err)
	}
}

// passkeyNames is the list the security page shows.
const passkeyNames = `[...document.querySelectorAll('#passkeys .passkey-name')].map((e) => e.textContent).join(',')`

// addPasskey registers a passkey named name from the security page and
// waits until the list shows want.
func addPasskey(t *testing.T, b *Browser, name, want string) {
	t.Helper()
	b.Fill(t, "#name", name)
	b.Click(t, "#add-passkey")
	b.WaitFor(t, t.Context(), fmt.Sprintf(`%s === %q || !document.getElementById('error').hidden`, passkeyNames, want), pageTimeout)
	if msg := Eval[string](t, b, `document.getElementById('error').hidden ? '' : document.getElementById('error').textContent`); msg != "" {
		t.Fatalf("%s: adding passkey %q refused: %s", b.Name, name, msg)
	}
}

// row is the security page's row of the passkey named name.
func row(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#passkeys li')].find((li) => li.querySelector('.passkey-name').textContent === %q)`, name)
}

// A provider registers two passkeys from the security page (the first
// authenticator then lost), renames one and removes the lost one; signs out
// and back in with the passkey alone, then with password and passkey, then
// with a recovery code, which still works.
func TestE2EPasskeyRegisterAndSignIn(t *testing.T) {
	srv := StartServer(t, onLocalhost)
	base := strings.Replace(srv.URL, "://127.0.0.1:", "://localhost:", 1)
	ctx := t.Context()
	pool := openPool(t, srv)
	const email, password = "pia.passkey@clinic.test", "velvet harbour 42 osprey kiln"
	u, secret := createUser(t, pool, email, "Pia Passkey", store.RoleProvider)

	b := NewBrowser(t, WithName("provider"))
	codes := enrol(t, b, signaling.SetupURL(base, secret), password, "")
	signIn(t, b, email, password, codes[0], "/provider")

	laptop := addAuthenticator(t, b)
	b.Navigate(t, base+"/security")
	b.WaitFor(t, ctx, `document.body.dataset.state === 'ready'`, pageTimeout)
	addPasskey(t, b, "Laptop", "Laptop")
	removeAuthenticator(t, b, laptop) // the laptop is lost
	addAuthenticator(t, b)
	addPasskey(t, b, "Phone", "Laptop,Phone")

	Eval[bool](t, b, row("Phone")+`.querySelector('.rename').click() || true`)
	Eval[bool](t, b, `(() => { const i = `+row("Phone")+`.querySelector('.rename-form input'); i.value = 'Work phone'; return true; })()`)
	Eval[bool](t, b, row("Phone")+`.querySelector('.rename-form button').click() || true`)
	b.WaitFor(t, ctx, passkeyNames+` === 'Laptop,Work phone'`, pageTimeout)
	Eval[bool](t, b, row("Laptop")+`.querySelector('.remove').click() || true`)
	b.Click(t, "#confirm-ok")
	b.WaitFor(t, ctx, passkeyNames+` === 'Work phone'`, pageTimeout)
	screenshot(t, b, "security-passkeys.png")
	checkPasskeyAudit(t, pool, u.ID)

	// The passkey alone: no address, password or code.
	signOut(t, b)
	b.Click(t, "#passkey-signin")
	b.WaitFor(t, ctx, `location.pathname === '/provider' && document.body.dataset.loaded === 'true'`, pageTimeout)
	if n := loginsWith(t, pool, u.ID, "passkey"); n != 1 {
		t.Errorf("%d sign-ins audited as passkey, want 1", n)
	}
	var signCount int64
	var lastUsed, lastSignin bool
	if err := pool.QueryRow(ctx, `SELECT c.sign_count, c.last_used_at IS NOT NULL, u.last_signin_at IS NOT NULL
		FROM webauthn_credentials c JOIN users u ON u.id = c.user_id WHERE c.user_id = $1`, string(u.ID)).Scan(&signCount, &lastUsed, &lastSignin); err != nil {
		t.Fatal(err)
	}
	if signCount < 1 || !lastUsed || !lastSignin {
		t.Errorf("after the passkey sign-in: sign count %d, passkey used %v, last sign-in recorded %v", signCount, lastUsed, lastSignin)
	}

	// Password, then the passkey as the second factor.
	signOut(t, b)
	b.Fill(t, "#email", email)
	b.Fill(t, "#password", password)
	b.Click(t, "#passkey-factor")
	b.WaitFor(t, ctx, `location.pathname === '/provider' && document.body.dataset.loaded === 'true'`, pageTimeout)
	if n := loginsWith(t, pool, u.ID, "passkey second factor"); n != 1 {
		t.Errorf("%d sign-ins audited with a passkey second factor, want 1", n)
	}

	// Recovery codes still work.
	signOut(t, b)
	signIn(t, b, email, password, codes[1], "/provider")
}

func signOut(t *testing.T, b *Browser) {
	t.Helper()
	b.Click(t, "#signout")
	b.WaitFor(t, t.Context(), `location.pathname === '/signin' && document.body.dataset.state === 'ready'`, pageTimeout)
}

func loginsWith(t *testing.T, pool *pgxpool.Pool, user ids.UserID, reason string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'auth.login'
		AND outcome = 'success' AND actor_id = $1 AND reason = $2`, string(user), reason).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkPasskeyAudit: two registrations, a rename and a removal, each
// audited with the user as actor; one passkey left.
func checkPasskeyAudit(t *testing.T, pool *pgxpool.Pool, user ids.UserID) {
	t.Helper()
	for action, want := range map[string]int{"passkey.register": 2, "passkey.rename": 1, "passkey.remove": 1} {
		var n int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = $1 AND actor_id = $2 AND outcome = 'success'`,
			action, string(user)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%d %s audit entries, want %d", n, action, want)
		}
	}
	keys, err := store.Passkeys(t.Context(), pool, user)
	if err != nil || len(keys) != 1 || keys[0].Name != "Work phone" {
		t.Errorf("stored passkeys %v (%v), want one named Work phone", keys, err)
	}
}
