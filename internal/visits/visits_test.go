package visits_test

import (
	"context"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/internal/visits"
)

// scheduled makes a visit scheduled from start to end with a patient, an
// invite, a patient session and a recording switched on; status is set
// as given.
func scheduled(t *testing.T, pool *store.DB, start, end time.Time, status string) ids.VisitID {
	t.Helper()
	ctx := context.Background()
	u := storetest.User(t, pool, "dr-"+string(ids.NewParticipantID())+"@clinic.test", "Dr", "provider")
	p := storetest.Patient(t, pool, store.Patient{Name: "Pat", DateOfBirth: "1980-01-02", CreatedBy: u.ID})
	v := ids.NewVisitID()
	if err := store.ScheduleVisit(ctx, pool, v, u.ID, p.ID, "", start, end, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE visits SET status = $2 WHERE id = $1`, string(v), status); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.CreateInvite(ctx, pool, v, start); err != nil {
		t.Fatal(err)
	}
	pid := ids.NewParticipantID()
	if _, err := pool.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, state) VALUES ($1, $2, 'patient', $3, 'admitted')`,
		string(pid), string(v), string(pid)); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateSession(ctx, pool, store.NewSession{IDHash: []byte(string(pid)), Kind: store.SessionPatient,
		VisitID: v, ParticipantID: pid, Now: start}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.StartRecording(ctx, pool, v, "test", start); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestExpireDue: visits nobody ended end on their own, through the same
// Close as "End visit": one in progress past its end is completed, one that
// never began is a no-show, each with its invites, patient sessions and
// recording ended and an audit entry; a visit still within its grace, and
// an ended one, are left alone.
func TestExpireDue(t *testing.T) {
	ctx := context.Background()
	pool := storetest.DB(t)
	now := time.Now()
	inProgress := scheduled(t, pool, now.Add(-4*time.Hour), now.Add(-3*time.Hour), store.StatusInProgress)
	neverBegun := scheduled(t, pool, now.Add(-4*time.Hour), now.Add(-3*time.Hour), store.StatusScheduled)
	inGrace := scheduled(t, pool, now.Add(-2*time.Hour), now.Add(-time.Hour), store.StatusInProgress)
	cancelled := scheduled(t, pool, now.Add(-4*time.Hour), now.Add(-3*time.Hour), store.StatusCancelled)

	n, err := visits.ExpireDue(ctx, pool, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("expired %d visits, want 2", n)
	}
	for v, want := range map[ids.VisitID]string{inProgress: store.StatusCompleted, neverBegun: store.StatusNoShow,
		inGrace: store.StatusInProgress, cancelled: store.StatusCancelled} {
		got, err := store.VisitByID(ctx, pool, v)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want {
			t.Errorf("visit %s is %s, want %s", v, got.Status, want)
		}
	}
	for _, v := range []ids.VisitID{inProgress, neverBegun} {
		var openInvites, liveSessions, admitted int
		var recording bool
		_ = pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM visit_invites WHERE visit_id = $1 AND revoked_at IS NULL),
			(SELECT count(*) FROM sessions WHERE visit_id = $1 AND revoked_at IS NULL),
			(SELECT count(*) FROM participants WHERE visit_id = $1 AND state = 'admitted'),
			(SELECT active FROM recording_controls WHERE visit_id = $1)`, string(v)).
			Scan(&openInvites, &liveSessions, &admitted, &recording)
		if openInvites != 0 || liveSessions != 0 || admitted != 0 || recording {
			t.Errorf("visit %s after expiry: %d open invites, %d live sessions, %d admitted, recording %v",
				v, openInvites, liveSessions, admitted, recording)
		}
		var audited int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND visit_id = $2`,
			visits.ActionVisitExpire, string(v)).Scan(&audited)
		if audited != 1 {
			t.Errorf("visit %s: %d expiry audit entries, want 1", v, audited)
		}
	}
	if n, err := visits.ExpireDue(ctx, pool, now); err != nil || n != 0 {
		t.Errorf("a second sweep expired %d (%v), want 0", n, err)
	}
}
