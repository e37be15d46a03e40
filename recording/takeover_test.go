package recording

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// TestTakeoverRecoversDeadHolder: a recorder that takes over a visit whose
// holder let its claim lapse learns whom it took it from, marks that
// recorder's unfinished recordings of the visit incomplete and recovers
// them at once — the open upload completed with the parts in storage — but
// leaves alone a recording that recorder still heartbeats and another
// visit's recording; a claim nobody held names nobody.
func TestTakeoverRecoversDeadHolder(t *testing.T) {
	e := newRecoverEnv(t)
	ctx := context.Background()
	dead := e.newCrashed("rec-a", 60*time.Second) // heartbeat a minute old
	e.upload(dead, 1, 0, crashPart)
	beating := e.newCrashed("rec-a", 40*time.Second)
	// The survivor's clock reads the moment of this heartbeat, however
	// long the steps below take on a busy machine: the recording is alive.
	beat := time.Now()
	if err := store.HeartbeatRecordings(ctx, e.pool, []string{beating.rec.ID}, beat); err != nil {
		t.Fatal(err)
	}
	other := newRecoverEnvVisit(t, e)

	if _, err := store.StartRecording(ctx, e.pool, e.visit, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	first, ok, err := store.ClaimRecording(ctx, e.pool, e.visit, "rec-a/aaaa", uuid.NewString())
	if err != nil || !ok || first.TakenFrom != "" {
		t.Fatalf("first claim: %+v %v %v, want it held by nobody before", first, ok, err)
	}
	if _, ok, _ := store.ClaimRecording(ctx, e.pool, e.visit, "rec-b/bbbb", uuid.NewString()); ok {
		t.Fatal("a live claim was taken over")
	}
	if _, err := e.pool.Exec(ctx, `UPDATE recording_controls SET heartbeat_at = now() - $2::interval WHERE visit_id = $1`,
		string(e.visit), store.ClaimLease+time.Second); err != nil {
		t.Fatal(err)
	}
	taken, ok, err := store.ClaimRecording(ctx, e.pool, e.visit, "rec-b/bbbb", uuid.NewString())
	if err != nil || !ok || taken.TakenFrom != "rec-a/aaaa" {
		t.Fatalf("takeover: %+v %v %v, want taken from rec-a/aaaa", taken, ok, err)
	}

	rc := *e.rc
	rc.node = "rec-b" // the survivor's recovery
	s := &Service{p: Params{Pool: e.pool, Node: "rec-b", Now: func() time.Time { return beat }}, log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), rc: &rc}
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	s.takeOver(ctx, e.visit, taken.TakenFrom)
	s.wg.Wait()

	e.checkKept(t, recoverCase{"taken over", dead, crashPart, true})
	if rec, ch := e.after(beating); rec.Status != store.RecRecording || ch.Status != store.ChunkUploading {
		t.Errorf("a recording its recorder still heartbeats was taken: %s / %s", rec.Status, ch.Status)
	}
	if rec, ch := e.after(other); rec.Status != store.RecRecording || ch.Status != store.ChunkUploading {
		t.Errorf("another visit's recording was taken: %s / %s", rec.Status, ch.Status)
	}
	ups, err := e.objs.listUploads(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		if u.UploadID == dead.uploadID {
			t.Error("the dead recorder's upload is still open")
		}
	}
	var audited int
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE resource_id = $1 AND actor_id = 'recorder:rec-b'
		AND action IN ($2, $3)`, dead.rec.ID, ActionRecordingSweep, ActionRecordingRecover).Scan(&audited)
	if audited != 2 {
		t.Errorf("%d audit entries of the takeover, want 2 (marked, recovered)", audited)
	}
}

// newRecoverEnvVisit leaves a crashed recording of rec-a in another visit.
func newRecoverEnvVisit(t *testing.T, e *recoverEnv) *crashed {
	t.Helper()
	saved := e.visit
	e.visit = ids.NewVisitID()
	if err := store.CreateVisit(context.Background(), e.pool, e.visit, "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { e.visit = saved }()
	c := e.newCrashed("rec-a", 60*time.Second)
	e.upload(c, 1, 0, crashPart)
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
