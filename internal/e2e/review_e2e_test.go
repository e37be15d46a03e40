package e2e

import (
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// TestE2ESelfReviewRefused: an alert about the signed-in admin says so on
// the admin page, and acknowledging it anyway shows the server's refusal
// (self_review) while the alert stays open.
func TestE2ESelfReviewRefused(t *testing.T) {
	srv := StartServer(t, nil)
	ctx := t.Context()
	pool := openPool(t, srv)
	const email, password = "solo.admin@clinic.test", "marble kettle orchard 9 violin"
	u, secret := createUser(t, pool, email, "Solo Admin", store.RoleAdmin)
	if _, err := store.RaiseAlert(ctx, pool, "bulk_recording_access", "critical", string(u.ID),
		"recordings accessed by one actor", time.Now()); err != nil {
		t.Fatal(err)
	}

	b := NewBrowser(t, WithName("admin"), WithFlag("hide-scrollbars", true))
	b.SetViewport(t, 360, 740)
	codes := enrol(t, b, signaling.SetupURL(srv.URL, secret), password, "")
	signIn(t, b, email, password, codes[0], "/admin")
	b.Click(t, "#alerts-refresh")
	b.WaitFor(t, ctx, `document.querySelectorAll('#alerts li button').length === 1`, pageTimeout)
	if !Eval[bool](t, b, `document.querySelector('#alerts li').textContent.includes('This alert is about you')`) {
		t.Error("the alert about the admin does not say so")
	}
	b.Click(t, "#alerts li button")
	b.WaitFor(t, ctx, `!document.getElementById('error').hidden && document.getElementById('error').textContent.includes('another admin')`, pageTimeout)
	screenshot(t, b, "admin-self-review-360.png")
	var open int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE acknowledged_at IS NULL`).Scan(&open); err != nil || open != 1 {
		t.Errorf("open alerts after the refused acknowledgement: %d (%v), want 1", open, err)
	}
}
