package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// pageTimeout bounds one wait on the staff pages (each is a page load and an
// API call or two on loopback; the waits poll).
const pageTimeout = 15 * time.Second

// screenshot checks that the page fits its viewport's width (no sideways
// scrolling on a phone) and saves a full-page PNG to
// $OV_E2E_SCREENSHOTS/name when that directory is set.
func screenshot(t *testing.T, b *Browser, name string) {
	t.Helper()
	if w := Eval[[]int](t, b, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`); w[0] > w[1] {
		wide := Eval[[]string](t, b, `[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5).slice(0, 5).map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)`)
		t.Errorf("%s: %s is %d px wide in a %d px viewport; too wide: %v", b.Name, name, w[0], w[1], wide)
	}
	dir := os.Getenv("OV_E2E_SCREENSHOTS")
	if dir == "" {
		return
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.FullScreenshot(t), 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", p)
}

// enrol opens a setup link, sets the password, enrols the authenticator
// with a code computed from the key the page shows, and returns the
// recovery codes the page shows once. It leaves the browser on /signin.
func enrol(t *testing.T, b *Browser, link, password, shot string) []string {
	t.Helper()
	ctx := t.Context()
	b.Navigate(t, link)
	b.WaitFor(t, ctx, `document.body.dataset.state === 'ready'`, pageTimeout)
	if h := Eval[string](t, b, `location.hash`); h != "" {
		t.Errorf("%s: the setup secret stays in the address bar", b.Name)
	}
	if !Eval[bool](t, b, `document.getElementById('qr').naturalWidth > 0`) {
		t.Errorf("%s: the QR code did not load", b.Name)
	}
	// What a user types from the screen: the grouped key, without spaces.
	secret := strings.ReplaceAll(Eval[string](t, b, `document.getElementById('secret').textContent`), " ", "")
	if shot != "" {
		screenshot(t, b, shot)
	}
	b.Fill(t, "#password", password)
	b.Fill(t, "#password2", password)
	code, err := totp.Code(secret, time.Now())
	if err != nil {
		t.Fatalf("%s: TOTP code from the page's key: %v", b.Name, err)
	}
	submitSetup(t, b, code)
	codes := Eval[[]string](t, b, `[...document.querySelectorAll('#codes code')].map((c) => c.textContent)`)
	if len(codes) < 5 {
		t.Fatalf("%s: %d recovery codes shown, want several", b.Name, len(codes))
	}
	if Eval[bool](t, b, `!document.getElementById('continue').disabled`) {
		t.Errorf("%s: can continue before confirming the codes are saved", b.Name)
	}
	leaveSetup(t, b)
	return codes
}

// submitSetup enters the authenticator code in the setup form (its
// passwords filled), submits it and fails unless the page accepts it.
func submitSetup(t *testing.T, b *Browser, code string) {
	t.Helper()
	b.Fill(t, "#code", code)
	b.Click(t, "#finish")
	b.WaitFor(t, t.Context(), `document.body.dataset.state === 'done' || !document.getElementById('form-error').hidden`, pageTimeout)
	if msg := Eval[string](t, b, `document.getElementById('form-error').hidden ? '' : document.getElementById('form-error').textContent`); msg != "" {
		t.Fatalf("%s: setup refused: %s", b.Name, msg)
	}
}

// leaveSetup confirms that the recovery codes are saved and continues to
// the sign-in page.
func leaveSetup(t *testing.T, b *Browser) {
	t.Helper()
	b.Click(t, "#saved")
	b.Click(t, "#continue")
	b.WaitFor(t, t.Context(), `location.pathname === '/signin' && document.body.dataset.state === 'ready'`, pageTimeout)
}

// signIn signs in with a recovery code (a TOTP step cannot be used twice,
// and the enrolment just used the current one) and waits for the page the
// account lands on.
func signIn(t *testing.T, b *Browser, email, password, recovery, wantPath string) {
	t.Helper()
	b.Fill(t, "#email", email)
	b.Fill(t, "#password", password)
	b.Click(t, "#toggle-recovery")
	b.Fill(t, "#recovery", recovery)
	b.Click(t, "#submit")
	b.WaitFor(t, t.Context(), fmt.Sprintf(`location.pathname === %q && document.body.dataset.loaded === 'true'`, wantPath), pageTimeout)
}

// openPool opens a pool on the server's database, closed when the test ends.
func openPool(t *testing.T, srv *Server) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), srv.DatabaseURL)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// createUser makes a staff account with no password or authenticator yet
// and returns it with the secret of its setup link.
func createUser(t *testing.T, pool *pgxpool.Pool, email, name, role string) (store.User, string) {
	t.Helper()
	u, err := store.CreateUser(t.Context(), pool, email, name, role)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	secret, err := store.CreateSetupLink(t.Context(), pool, u.ID, store.PurposeInvite, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("setup link: %v", err)
	}
	return u, secret
}

// TestE2ESignInEnrolAndAdmin walks the staff pages in two real browsers: an
// admin enrols from a setup link and signs in, invites a provider, the
// provider enrols, signs in and starts a visit; then the admin disables the
// provider, and the provider's call page shows that it was removed — a
// disable ends every session and SFU participant at once.
func TestE2ESignInEnrolAndAdmin(t *testing.T) {
	srv := StartServer(t, nil)
	start := time.Now()

	// The first admin, as `openvisit user create` makes one.
	pool := openPool(t, srv)
	const adminEmail, adminPassword = "ada.admin@clinic.test", "quartz lantern meadow 7 oboe"
	_, secret := createUser(t, pool, adminEmail, "Ada Admin", store.RoleAdmin)

	admin := NewBrowser(t, WithName("admin"), WithFlag("hide-scrollbars", true))
	provider := NewBrowser(t, WithName("provider"), WithFlag("hide-scrollbars", true))
	// Both on a small phone (overlay scrollbars, as phones have): the layout
	// must hold at 360 px.
	admin.SetViewport(t, 360, 740)
	provider.SetViewport(t, 360, 740)

	codes := adminEnrolsAndSignsIn(t, admin, signaling.SetupURL(srv.URL, secret), adminEmail, adminPassword)
	t.Logf("admin signed in after %v", time.Since(start).Round(time.Millisecond))

	// The admin invites a provider, who enrols and signs in.
	const provEmail, provPassword = "pat.provider@clinic.test", "tangerine ferry 42 pillow gust"
	provLink := inviteProvider(t, srv, admin, provEmail)
	provCodes := enrol(t, provider, provLink, provPassword, "")
	signIn(t, provider, provEmail, provPassword, provCodes[0], "/provider")
	screenshot(t, provider, "provider-360.png")

	breakGlassReviewed(t, pool, admin, provider)
	providerStartsVisit(t, provider)
	t.Logf("provider connected after %v", time.Since(start).Round(time.Millisecond))

	disableProvider(t, admin, provEmail)
	checkProviderRemoved(t, provider)
	t.Logf("provider removed after %v", time.Since(start).Round(time.Millisecond))

	// Nothing secret reached the server log.
	logs := srv.Logs()
	for name, s := range map[string]string{"admin setup secret": secret, "provider setup link": provLink[strings.Index(provLink, "#token=")+7:],
		"admin recovery code": codes[0], "provider recovery code": provCodes[0]} {
		if strings.Contains(logs, s) {
			t.Errorf("the server log holds the %s", name)
		}
	}
}

// adminEnrolsAndSignsIn: the admin enrols from the setup link and signs
// in, after a wrong password first (the page says why, and stays usable);
// the admin page lists one user. It returns the recovery codes.
func adminEnrolsAndSignsIn(t *testing.T, admin *Browser, link, email, password string) []string {
	t.Helper()
	codes := enrol(t, admin, link, password, "setup-360.png")
	screenshot(t, admin, "signin-360.png")
	admin.Fill(t, "#email", email)
	admin.Fill(t, "#password", "not the password at all")
	admin.Fill(t, "#code", "123456")
	admin.Click(t, "#submit")
	admin.WaitFor(t, t.Context(), `!document.getElementById('error').hidden && document.getElementById('error').textContent.includes('Sign-in failed')`, pageTimeout)
	signIn(t, admin, email, password, codes[0], "/admin")
	if n := Eval[int](t, admin, `document.querySelectorAll('#users-body tr').length`); n != 1 {
		t.Errorf("admin: %d users listed, want 1", n)
	}
	return codes
}

// inviteProvider: the admin invites a provider and gets the one-time link
// from the page, which it returns.
func inviteProvider(t *testing.T, srv *Server, admin *Browser, email string) string {
	t.Helper()
	admin.Fill(t, "#invite-email", email)
	admin.Fill(t, "#invite-name", "Pat Provider")
	admin.Click(t, "#invite-submit")
	admin.WaitFor(t, t.Context(), fmt.Sprintf(`document.getElementById('setup-link').value.startsWith(%q)
    && document.querySelector('tr[data-email=%q]') !== null`, srv.URL+"/setup#token=", email), pageTimeout)
	link := Eval[string](t, admin, `document.getElementById('setup-link').value`)
	screenshot(t, admin, "admin-360.png")
	return link
}

// breakGlassReviewed: emergency access to a visit that is not the
// provider's (the demo visit). The provider asks with a reason, the admin
// sees the grant and its alert, reviews one and acknowledges the other.
func breakGlassReviewed(t *testing.T, pool *pgxpool.Pool, admin, provider *Browser) {
	t.Helper()
	ctx := t.Context()
	var otherVisit string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM visits ORDER BY created_at LIMIT 1`).Scan(&otherVisit); err != nil {
		t.Fatalf("demo visit: %v", err)
	}
	provider.Fill(t, "#bg-visit", otherVisit)
	provider.Fill(t, "#bg-reason", "Covering for the on-call physician; the patient reports chest pain.")
	provider.Click(t, "#bg-submit")
	provider.WaitFor(t, ctx, `document.querySelector('dialog[open] #confirm-ok') !== null`, pageTimeout)
	provider.Click(t, "#confirm-ok")
	provider.WaitFor(t, ctx, `!document.getElementById('bg-result').hidden`, pageTimeout)
	admin.Click(t, "#grants-refresh")
	admin.Click(t, "#alerts-refresh")
	admin.WaitFor(t, ctx, `document.querySelectorAll('#grants li').length === 1 && document.querySelectorAll('#alerts li').length === 1`, pageTimeout)
	if !Eval[bool](t, admin, `document.querySelector('#grants li').textContent.includes('Pat Provider') && document.querySelector('#grants li').textContent.includes('chest pain')`) {
		t.Error("admin: the grant does not name the provider and the reason")
	}
	admin.SetViewport(t, 1280, 800)
	screenshot(t, admin, "admin-1280.png")
	admin.SetViewport(t, 360, 740)
	// One at a time: each action re-renders the lists, so a second click
	// sent at once could land on a button that is being replaced.
	admin.Click(t, "#grants li button")
	admin.WaitFor(t, ctx, `document.querySelector('#grants li.done') !== null && document.querySelectorAll('#grants li button').length === 0`, pageTimeout)
	admin.Click(t, "#alerts li button")
	admin.WaitFor(t, ctx, `document.querySelector('#alerts li.done') !== null && document.querySelectorAll('#alerts li button').length === 0`, pageTimeout)
}

// providerStartsVisit: the provider starts a visit and is alone on the
// call page.
func providerStartsVisit(t *testing.T, provider *Browser) {
	t.Helper()
	provider.Click(t, "#start-visit")
	provider.WaitFor(t, t.Context(), `location.pathname === '/call' && document.body.dataset.state === 'connected'`, callTimeout)
	if q := Eval[string](t, provider, `location.search`); !strings.HasPrefix(q, "?visit=") {
		t.Errorf("provider: call page address %q, want ?visit=…", q)
	}
	if Eval[string](t, provider, `window.openvisit.self || ''`) == "" {
		t.Error("provider: no participant ID on the call page")
	}
	if n := Eval[int](t, provider, `document.querySelectorAll('[data-participant]').length`); n != 0 {
		t.Errorf("provider: %d remote tiles, want 0 (alone in the visit)", n)
	}
}

// disableProvider: the admin refreshes the list (the provider has enrolled
// since) and disables the provider, after confirming.
func disableProvider(t *testing.T, admin *Browser, email string) {
	t.Helper()
	ctx := t.Context()
	row := fmt.Sprintf(`tr[data-email=%q]`, email)
	admin.Click(t, "#users-refresh")
	admin.WaitFor(t, ctx, fmt.Sprintf(`document.querySelector('%s').textContent.includes('Active')`, row), pageTimeout)
	admin.Click(t, row+` [data-action="disable"]`)
	admin.WaitFor(t, ctx, `document.querySelector('dialog[open] #confirm-ok') !== null`, pageTimeout)
	admin.Click(t, "#confirm-ok")
	admin.WaitFor(t, ctx, fmt.Sprintf(`document.querySelector('%s [data-action="enable"]') !== null
    && document.querySelector('%s').textContent.includes('Disabled')`, row, row), pageTimeout)
}

// checkProviderRemoved: the provider's call ends at once, removed by the
// server, and their session is gone.
func checkProviderRemoved(t *testing.T, provider *Browser) {
	t.Helper()
	provider.WaitFor(t, t.Context(), `window.openvisit.closed !== null && !document.getElementById('ended').hidden`, pageTimeout)
	if c := Eval[int](t, provider, `window.openvisit.closed.code`); c != 4010 {
		t.Errorf("provider: socket closed with %d, want 4010", c)
	}
	if e := Eval[string](t, provider, `window.openvisit.lastError`); e != "removed" {
		t.Errorf("provider: last error %q, want removed", e)
	}
	if title := Eval[string](t, provider, `document.getElementById('ended-title').textContent`); !strings.Contains(title, "removed") {
		t.Errorf("provider: the call page says %q, want that they were removed", title)
	}
	if s := Eval[int](t, provider, `fetch('/api/v1/auth/session').then((r) => r.status)`); s != 401 {
		t.Errorf("provider: session answers %d after the disable, want 401", s)
	}
}

// TestE2EIdleLogoff checks the page side of automatic logoff: the warning a
// minute before the server's deadline, "Stay signed in" extending the
// session, and the page leaving for /signin when the session ends. Rather
// than wait out the idle timeout, the test moves the session's last
// activity back in the database and lets the page re-read it, as it does
// when another tab tells it the session changed.
func TestE2EIdleLogoff(t *testing.T) {
	const idle = 10 * time.Minute
	srv := StartServer(t, func(c *config.Config) { c.Auth.Idle = idle })
	ctx := t.Context()
	pool := openPool(t, srv)
	const email, password = "ida.idle@clinic.test", "marble sprocket 19 heron dune"
	u, secret := createUser(t, pool, email, "Ida Idle", store.RoleProvider)

	b := NewBrowser(t, WithName("provider"), WithFlag("hide-scrollbars", true))
	b.SetViewport(t, 360, 740)
	codes := enrol(t, b, signaling.SetupURL(srv.URL, secret), password, "")
	signIn(t, b, email, password, codes[0], "/provider")

	// idleLeft makes the server's idle deadline `left` from now and tells
	// the page, which re-reads its session passively.
	idleLeft := func(left time.Duration) {
		t.Helper()
		// created_at moves too: a session is never seen before it began.
		_, err := pool.Exec(ctx, `UPDATE sessions SET created_at = now() - $2::interval, last_seen_at = now() - $2::interval
			WHERE user_id = $1 AND revoked_at IS NULL`,
			string(u.ID), fmt.Sprintf("%d milliseconds", (idle-left).Milliseconds()))
		if err != nil {
			t.Fatalf("move last activity: %v", err)
		}
		Eval[bool](t, b, `(() => { const c = new BroadcastChannel('openvisit-session'); c.postMessage('extended'); c.close(); return true; })()`)
	}
	const dialogOpen = `document.querySelector('#idle-dialog[open]') !== null`

	idleLeft(30 * time.Second)
	b.WaitFor(t, ctx, dialogOpen+` && document.querySelector('#idle-dialog .countdown').textContent.includes('0:')`, pageTimeout)
	screenshot(t, b, "idle-warning-360.png")
	if id := Eval[string](t, b, `document.activeElement ? document.activeElement.id : ''`); id != "idle-stay" {
		t.Errorf("focus on %q when the warning opens, want the Stay signed in button", id)
	}
	b.Click(t, "#idle-stay")
	b.WaitFor(t, ctx, `document.querySelector('#idle-dialog') === null`, pageTimeout)
	var lastSeen time.Time
	if err := pool.QueryRow(ctx, `SELECT max(last_seen_at) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, string(u.ID)).Scan(&lastSeen); err != nil {
		t.Fatal(err)
	}
	if time.Since(lastSeen) > 10*time.Second {
		t.Errorf("Stay signed in did not extend the session (last seen %v ago)", time.Since(lastSeen).Round(time.Second))
	}

	// Now let it run out: the page leaves for /signin and says why.
	idleLeft(2 * time.Second)
	b.WaitFor(t, ctx, dialogOpen, pageTimeout)
	b.WaitFor(t, ctx, `location.pathname === '/signin' && !document.getElementById('notice').hidden
    && document.getElementById('notice').textContent.includes('session has ended')`, pageTimeout)
	if s := Eval[int](t, b, `fetch('/api/v1/auth/session').then((r) => r.status)`); s != 401 {
		t.Errorf("session answers %d after the idle logoff, want 401", s)
	}
}
