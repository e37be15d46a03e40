package app_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Nobody reviews themselves: an admin cannot acknowledge an alert about
// themselves, review their own break-glass grant or reset their own MFA
// (403 self_review, audited as denied, nothing changed); a second admin
// can. In a clinic with one admin the operator does it with the openvisit
// command on the server, audited with the operator as actor.
func TestNoSelfReview(t *testing.T) {
	s := startServer(t)
	a1 := s.enrol(t, "first-admin@clinic.test", "admin")
	a2 := s.enrol(t, "second-admin@clinic.test", "admin")
	prov := s.enrol(t, "provider@clinic.test", "provider")
	visit := s.newVisit(t, prov.ID)
	alert1, grant1 := s.aboutUser(t, a1.ID, visit)
	c1, c2 := s.newClient(t), s.newClient(t)
	c1.mustLogin(a1)
	c2.mustLogin(a2)

	mine := map[string]string{
		"alert":       "/api/v1/admin/alerts/" + alert1 + "/ack",
		"break-glass": "/api/v1/admin/break-glass/" + grant1 + "/review",
		"reset-mfa":   "/api/v1/admin/users/" + string(a1.ID) + "/reset-mfa",
	}
	selfReviewsRefused(t, s, c1, a1, mine)
	s.wantOpen(t, alert1, grant1)
	if r := c1.do("GET", "/api/v1/auth/session", nil); r.Status != 200 {
		t.Errorf("session after refused self reset-mfa = %d, want 200 (nothing reset)", r.Status)
	}

	// A second admin may.
	for what, path := range mine {
		if r := c2.do("POST", path, struct{}{}); r.Status != 200 {
			t.Errorf("%s by the second admin = %d %s", what, r.Status, r.Body)
		}
	}
	for _, action := range []string{"alert.acknowledge", "break_glass.review", "user.mfa.reset"} {
		if n := s.auditBy(t, action, string(a2.ID), "admin"); n != 1 {
			t.Errorf("%s by the second admin audited %d times, want 1", action, n)
		}
	}
	if r := c1.do("GET", "/api/v1/auth/session", nil); r.Status != 401 {
		t.Errorf("first admin's session after the reset = %d, want 401", r.Status)
	}

	s.operatorReviews(t, c2, a2, visit)
}

// selfReviewsRefused: each of admin's reviews of themselves (mine: what →
// path) is refused with 403 self_review and audited as denied.
func selfReviewsRefused(t *testing.T, s *server, c *client, admin staff, mine map[string]string) {
	t.Helper()
	for what, path := range mine {
		r := c.do("POST", path, struct{}{})
		if r.Status != 403 || r.code() != "self_review" || !strings.Contains(string(r.Body), "another admin") {
			t.Errorf("%s of oneself = %d %s, want 403 self_review", what, r.Status, r.Body)
		}
	}
	if n := s.deniedSelfReviews(t, admin.ID); n != 3 {
		t.Errorf("%d self-review refusals audited as denied, want 3", n)
	}
}

// operatorReviews: with one admin (admin, signed in on c, about
// themselves), the operator signs off on the server. Without a reason the
// command refuses and changes nothing.
func (s *server) operatorReviews(t *testing.T, c *client, admin staff, visit ids.VisitID) {
	t.Helper()
	alert2, grant2 := s.aboutUser(t, admin.ID, visit)
	if r := c.do("POST", "/api/v1/admin/alerts/"+alert2+"/ack", struct{}{}); r.Status != 403 {
		t.Fatalf("second admin acking their own alert = %d", r.Status)
	}
	bin := openvisitBinary(t)
	dsn := s.Pool.Config().ConnString()
	if out, err := operator(t, bin, dsn, "alerts", "ack", alert2); err == nil || !strings.Contains(out, "--reason") {
		t.Errorf("alerts ack without --reason: %v\n%s", err, out)
	}
	s.wantOpen(t, alert2, grant2)
	const reason = "single-admin clinic: checked with the practice owner"
	for _, args := range [][]string{
		{"alerts", "ack", alert2, "--reason", reason},
		{"break-glass", "review", "--reason", reason, grant2},
		{"user", "reset-mfa", "--email", admin.Email, "--reason", reason},
	} {
		out, err := operator(t, bin, dsn, args...)
		if err != nil {
			t.Fatalf("openvisit %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[1] == "reset-mfa" && !strings.Contains(out, "/setup#token=") {
			t.Errorf("reset-mfa printed no setup link:\n%s", out)
		}
	}
	for _, action := range []string{"alert.acknowledge", "break_glass.review", "user.mfa.reset"} {
		if n := s.auditBy(t, action, "os:%", "operator"); n != 1 {
			t.Errorf("%s by the operator audited %d times, want 1", action, n)
		}
	}
	var open int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM alerts WHERE id = $1 AND acknowledged_at IS NULL`, alert2).Scan(&open); err != nil || open != 0 {
		t.Errorf("alert still open after the operator's ack (%v)", err)
	}
	if r := c.do("GET", "/api/v1/auth/session", nil); r.Status != 401 {
		t.Errorf("second admin's session after the operator's reset = %d, want 401", r.Status)
	}
}

// aboutUser raises an alert whose subject is user and records a break-glass
// grant held by user (granted, say, while they were a provider).
func (s *server) aboutUser(t *testing.T, user ids.UserID, visit ids.VisitID) (alert, grant string) {
	t.Helper()
	ctx := context.Background()
	a, err := store.RaiseAlert(ctx, s.Pool, "bulk_recording_access", "critical", string(user), "recordings accessed by one actor", s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	g, err := store.GrantBreakGlass(ctx, s.App.DB(), user, visit, "patient deteriorating, covering provider", s.Clock.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID, g.ID
}

func (s *server) wantOpen(t *testing.T, alert, grant string) {
	t.Helper()
	var n int
	err := s.Pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM alerts WHERE id = $1 AND acknowledged_at IS NULL) +
		(SELECT count(*) FROM break_glass WHERE id = $2 AND reviewed_at IS NULL)`, alert, grant).Scan(&n)
	if err != nil || n != 2 {
		t.Errorf("alert and grant still open: %d of 2 (%v)", n, err)
	}
}

func (s *server) deniedSelfReviews(t *testing.T, actor ids.UserID) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events
		WHERE actor_id = $1 AND outcome = 'denied' AND reason = 'self_review'`, string(actor)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *server) auditBy(t *testing.T, action, actorLike, role string) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events
		WHERE action = $1 AND actor_id LIKE $2 AND actor_role = $3 AND outcome = 'success'`, action, actorLike, role).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// openvisitBinary builds the openvisit command for this test.
func openvisitBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "openvisit")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/openvisit/openvisit/cmd/openvisit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// operator runs the openvisit command as an operator would on the server,
// against the test's database.
func operator(t *testing.T, bin, dsn string, args ...string) (string, error) {
	t.Helper()
	env := []string{"OPENVISIT_DATABASE_URL=" + dsn, "OPENVISIT_ENVIRONMENT=development",
		"OPENVISIT_DATA_DIR=" + t.TempDir()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENVISIT_") {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
