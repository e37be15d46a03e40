package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/internal/token"
)

// TestE2EDevelopmentMailOutbox: a server in development without SMTP keeps
// its mail in the outbox. The provider emails a patient their visit link
// from the schedule page, follows the page's link to /outbox, opens the
// message and downloads its calendar file; the link in the mail is the real
// one (a patient redeems it), and every read is audited naming the patient.
func TestE2EDevelopmentMailOutbox(t *testing.T) {
	srv := StartServer(t, nil)
	ctx := t.Context()
	v := scheduleVisitOn(t, srv, false)
	b := v.provider

	b.Click(t, "#invite-email")
	b.WaitFor(t, ctx, `document.getElementById('invite-status').textContent.includes('emailed')`, pageTimeout)
	link := Eval[string](t, b, `document.getElementById('invite-link').value`)
	if !strings.HasPrefix(link, srv.URL+"/join#invite=") {
		t.Fatalf("the page shows %q as the emailed link", redactFragment(link))
	}

	// The provider page links the outbox (development only).
	if Eval[bool](t, b, `document.getElementById('nav-outbox').hidden`) {
		t.Fatal("the provider page does not link the outbox in development")
	}
	b.Click(t, "#nav-outbox")
	b.WaitFor(t, ctx, `location.pathname === '/outbox' && document.body.dataset.loaded === 'true'`, pageTimeout)
	items := Eval[[]string](t, b, `[...document.querySelectorAll('#messages li')].map((li) => li.innerText)`)
	if len(items) != 1 || !strings.Contains(items[0], "Your video visit link") || !strings.Contains(items[0], "jordan@example.test") ||
		!strings.Contains(items[0], "video-visit.ics") {
		t.Fatalf("the outbox lists %q, want the invite to jordan@example.test with its calendar file", items)
	}
	b.Click(t, `#messages [data-action="open"]`)
	b.WaitFor(t, ctx, `!document.getElementById('message').hidden`, pageTimeout)
	body := Eval[string](t, b, `document.getElementById('message-body').textContent`)
	if !strings.Contains(body, link) || !strings.Contains(body, "Visit time:") {
		t.Errorf("the message text lacks the link or the time:\n%s", body)
	}
	if strings.Contains(body, patientName) || strings.Contains(body, "lab results") {
		t.Errorf("the invite email names the patient or the reason:\n%s", body)
	}
	ics := fetchLink(t, b, `#message-attachments a[data-attachment="0"]`)
	if ics.Status != 200 || !strings.HasPrefix(ics.Type, "text/calendar") {
		t.Fatalf("calendar download: %d %s", ics.Status, ics.Type)
	}
	for _, want := range []string{"BEGIN:VCALENDAR", "BEGIN:VEVENT", "UID:" + v.visitID + "@openvisit", "URL:" + link} {
		// Long lines are folded (RFC 5545 3.1): read them unfolded.
		if !strings.Contains(strings.ReplaceAll(ics.Body, "\r\n ", ""), want) {
			t.Errorf("the calendar file lacks %q:\n%s", want, ics.Body)
		}
	}
	if got := Eval[string](t, b, `document.querySelector('#message-attachments a').getAttribute('download')`); got != "video-visit.ics" {
		t.Errorf("the download is named %q", got)
	}
	screenshot(t, b, "outbox.png")
	b.SetViewport(t, 360, 740)
	screenshot(t, b, "outbox-360.png") // fits a phone's width, long link and all

	// The mail holds the real link: a patient gets in with it.
	redeemByHTTP(t, srv, link, patientDOB)

	// Listing, reading and downloading are audited, naming the patient.
	pool := openPool(t, srv)
	var reads, named int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE patient_id = (SELECT patient_id::text FROM visits WHERE id = $1))
		FROM audit_events WHERE action = 'dev_outbox.read'`, v.visitID).Scan(&reads, &named); err != nil {
		t.Fatal(err)
	}
	if reads < 3 || named != reads {
		t.Errorf("%d outbox reads audited, %d naming the patient; want list, read and download, each naming them", reads, named)
	}
}

// productionConfig turns an e2e configuration into a production one: its
// own certificate, keys and secrets, object storage for the audit anchors,
// the API role alone and no SMTP server.
func productionConfig(t *testing.T, c *config.Config) {
	t.Helper()
	dir := c.DataDir
	if _, err := certs.SelfSigned(dir, []string{"127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.Environment, c.Demo, c.Roles = config.Production, false, []string{config.RoleAPI}
	c.TLS.CertFile, c.TLS.KeyFile = filepath.Join(dir, "selfsigned-cert.pem"), filepath.Join(dir, "selfsigned-key.pem")
	c.Token.SigningKeyFile = filepath.Join(dir, "token.key")
	c.Auth.SecretKeyFile = filepath.Join(dir, "auth.key")
	c.Audit.CheckpointKeyFile = filepath.Join(dir, "checkpoint.key")
	c.Recording.KeyringFile = filepath.Join(dir, "keyring.json")
	if _, err := token.LoadKey(c.Token.SigningKeyFile, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{c.Auth.SecretKeyFile, c.Audit.CheckpointKeyFile} {
		if _, err := keys.LoadSecret(p, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := keys.OpenKeyringFile(c.Recording.KeyringFile, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	s3 := testenv.MinIO(t)
	c.S3 = s3.Config(c.S3.Bucket) // over TLS with the test CA, as production requires
	var b [4]byte
	_, _ = rand.Read(b[:])
	c.Audit.AnchorBucket = "ov-prod-outbox-" + hex.EncodeToString(b[:])
	c.Audit.AnchorRetention = time.Minute
	c.SMTP.Host = ""
}

// In production there is no outbox: its API and its page answer 404 to
// staff and anyone else, the session does not offer it, and asking for an
// invite email says that email is not configured.
func TestE2EOutboxAbsentInProduction(t *testing.T) {
	srv := StartServer(t, func(c *config.Config) { productionConfig(t, c) })
	pool := openPool(t, srv)
	prov, provID := staffClient(t, srv, pool, store.RoleProvider)
	admin, _ := staffClient(t, srv, pool, store.RoleAdmin)
	if _, err := store.AddOutboxMessage(context.Background(), srv.App.DB(), store.OutboxMessage{SentBy: provID, To: "pat@example.test",
		Subject: "kept somehow", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	var id string
	if err := pool.QueryRow(context.Background(), `SELECT id::text FROM dev_outbox`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*apiClient{prov, admin} {
		for _, path := range []string{"/api/v1/dev/outbox", "/api/v1/dev/outbox/" + id, "/api/v1/dev/outbox/" + id + "/attachments/0", "/outbox"} {
			if r := c.do("GET", path, nil, nil); r.Status != 404 {
				t.Errorf("production: GET %s = %d, want 404", path, r.Status)
			}
		}
		if r := c.do("GET", "/api/v1/auth/session", nil, nil); r.Status != 200 || strings.Contains(string(r.Body), "dev_outbox") {
			t.Errorf("production session view: %d %s", r.Status, r.Body)
		}
	}
	v, _ := scheduleByAPI(t, prov, "Prod Patient", "1970-01-01")
	r := prov.do("POST", "/api/v1/visits/"+string(v.ID)+"/invite", map[string]bool{"email": true}, nil)
	if r.Status != 503 || !strings.Contains(string(r.Body), "no_smtp") {
		t.Errorf("invite email in production without SMTP: %d %s, want 503 no_smtp", r.Status, r.Body)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM dev_outbox`).Scan(&n); err != nil || n != 1 {
		t.Errorf("production kept mail in the outbox: %d messages (%v), want only the test's own", n, err)
	}
}
