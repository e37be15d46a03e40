package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/signaling"
)

// recState reads the visit's recording state as c sees it (the page's poll).
func recState(t *testing.T, c *apiClient, v ids.VisitID) signaling.RecordingState {
	t.Helper()
	r := c.must("GET", "/api/v1/visits/"+string(v)+"/recording", nil, http.StatusOK)
	var st signaling.RecordingState
	decodeJSON(t, r.Body, &st)
	return st
}

// demoVisitWithProvider makes a provider user the demo visit's provider and
// returns a session for them and for the demo patient.
func demoVisitWithProvider(t *testing.T, srv *Server, pool *pgxpool.Pool) (ids.VisitID, *apiClient, *apiClient) {
	t.Helper()
	visit, parts := demoVisit(t, pool)
	prov, provID := staffClient(t, srv, pool, "provider")
	if _, err := pool.Exec(context.Background(), `UPDATE visits SET provider_id = $1 WHERE id = $2`, string(provID), string(visit)); err != nil {
		t.Fatal(err)
	}
	pat := newAPIClient(t, srv, pool, store.NewSession{Kind: store.SessionPatient, VisitID: visit, ParticipantID: parts["patient"]})
	return visit, prov, pat
}

func startRec(t *testing.T, srv *Server, pool *pgxpool.Pool, v ids.VisitID) {
	t.Helper()
	if _, err := store.StartRecording(context.Background(), pool, v, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.App.Recorder().SyncNow()
}

// TestEndVisitStopsRecording: "End visit" while recording ends the
// recording with the visit — within 5 s it is complete and plays, no flag
// is left on, the room is gone from the media node — and a restarted
// server's recorder does not join the ended visit again.
func TestEndVisitStopsRecording(t *testing.T) {
	ctx := t.Context()
	srv := recordingServer(t, testenv.MinIO(t), nil)
	pool := recPool(t, srv)
	visit, prov, _ := demoVisitWithProvider(t, srv, pool)
	pub := newPublisher(t, srv, srv.DemoLinks(t)[1], 0)
	startRec(t, srv, pool, visit)
	waitFor(t, "the recorder to report media", 20*time.Second, func() bool {
		return recState(t, prov, visit).Status == store.RecStateRecording
	})
	time.Sleep(2 * time.Second) // some media to keep

	prov.must("POST", "/api/v1/visits/"+string(visit)+"/end", struct{}{}, http.StatusOK)
	ended := time.Now()
	var recs []store.Recording
	waitFor(t, "every recording of the visit to be complete", 5*time.Second, func() bool {
		recs, _ = store.ListRecordings(ctx, pool, store.RecordingFilter{VisitID: visit, Now: time.Now()})
		for _, r := range recs {
			if r.Status != store.RecComplete {
				return false
			}
		}
		return len(recs) > 0
	})
	t.Logf("%d recording(s) complete %v after the visit ended", len(recs), time.Since(ended).Round(time.Millisecond))
	admin, _ := staffClient(t, srv, pool, "admin")
	for _, r := range recs {
		got := admin.must("GET", "/api/v1/recordings/"+r.ID+"/chunks/0", nil, http.StatusOK)
		if len(got.Body) == 0 {
			t.Errorf("recording %s plays no bytes", r.ID)
		}
	}
	waitFor(t, "the room to close on the media node", 5*time.Second, func() bool {
		return srv.App.Media().Stats().Rooms == 0
	})
	if !pub.Dropped() {
		t.Error("the publisher's media connection is still open")
	}
	ctl, _, err := store.RecordingControlOf(ctx, pool, visit)
	if err != nil || ctl.Active || ctl.StopReason != "visit_ended" {
		t.Errorf("recording switch after the end: active=%v reason=%q err=%v", ctl.Active, ctl.StopReason, err)
	}
	var claimed bool
	waitFor(t, "the recorder's claim to be released", 5*time.Second, func() bool {
		_ = pool.QueryRow(ctx, `SELECT claim_id IS NOT NULL FROM recording_controls WHERE visit_id = $1`, string(visit)).Scan(&claimed)
		return !claimed
	})

	srv.Restart(t)
	time.Sleep(4 * time.Second) // several recorder polls
	if n := srv.App.Recorder().Stats().Sessions; n != 0 {
		t.Errorf("after a restart the recorder is in %d room(s), want none", n)
	}
	after, _ := store.ListRecordings(ctx, pool, store.RecordingFilter{VisitID: visit, Now: time.Now()})
	if len(after) != len(recs) {
		t.Errorf("after a restart the visit has %d recordings, want %d (no rejoin)", len(after), len(recs))
	}
	if n := srv.App.Media().Stats().Rooms; n != 0 {
		t.Errorf("after a restart the media node has %d room(s)", n)
	}
}

// TestRecordingIndicatorFollowsMedia: the indicator shows what the recorder
// reports, not the switch. A recording whose media never arrives is shown
// to both sides as not working within 10 s and raises an alert; one whose
// media arrives is "starting" until the recorder has written media.
func TestRecordingIndicatorFollowsMedia(t *testing.T) {
	ctx := t.Context()
	srv := recordingServer(t, testenv.MinIO(t), nil)
	pool := recPool(t, srv)

	t.Run("no media", func(t *testing.T) {
		visit, prov, pat := demoVisitWithProvider(t, srv, pool)
		// Switched on, consented, and nobody sends the recorder anything.
		startRec(t, srv, pool, visit)
		started := time.Now()
		for name, c := range map[string]*apiClient{"provider": prov, "patient": pat} {
			st := recState(t, c, visit)
			if st.Status == store.RecStateRecording {
				t.Fatalf("%s is shown %q before any media was written", name, st.Status)
			}
		}
		waitFor(t, "both sides to be told recording is not working", 10*time.Second, func() bool {
			return recState(t, prov, visit).Status == store.RecStateNotWorking &&
				recState(t, pat, visit).Status == store.RecStateNotWorking
		})
		t.Logf("reported not working %v after the start", time.Since(started).Round(100*time.Millisecond))
		waitFor(t, "an alert", 15*time.Second, func() bool {
			var n int
			_ = pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE kind = $1 AND detail LIKE '%' || $2 || '%'`,
				alerts.KindRecordingNotWorking, string(visit)).Scan(&n)
			return n == 1
		})
		var audited int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND visit_id = $2 AND outcome = 'failure'`,
			alerts.ActionRecordingNotWorking, string(visit)).Scan(&audited)
		if audited != 1 {
			t.Errorf("%d %s audit entries, want 1", audited, alerts.ActionRecordingNotWorking)
		}
		if _, err := store.StopRecording(ctx, pool, visit, "stopped", time.Now()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("media", func(t *testing.T) {
		srv2 := recordingServer(t, testenv.MinIO(t), nil)
		pool2 := recPool(t, srv2)
		visit, prov, pat := demoVisitWithProvider(t, srv2, pool2)
		newPublisher(t, srv2, srv2.DemoLinks(t)[1], 0)
		r := prov.must("POST", "/api/v1/visits/"+string(visit)+"/recording/request", struct{}{}, http.StatusOK)
		r = pat.must("POST", "/api/v1/visits/"+string(visit)+"/recording/consent", map[string]bool{"accept": true}, http.StatusOK)
		r = prov.must("POST", "/api/v1/visits/"+string(visit)+"/recording/start", struct{}{}, http.StatusOK)
		var st signaling.RecordingState
		if err := json.Unmarshal(r.Body, &st); err != nil {
			t.Fatal(err)
		}
		if st.Status != store.RecStateStarting || !st.Recording {
			t.Fatalf("right after start: status %q (switch %v), want starting", st.Status, st.Recording)
		}
		waitFor(t, "both sides to show recording", 30*time.Second, func() bool {
			return recState(t, prov, visit).Status == store.RecStateRecording && recState(t, pat, visit).Status == store.RecStateRecording
		})
		ctl, _, err := store.RecordingControlOf(ctx, pool2, visit)
		if err != nil || ctl.FirstMediaAt == nil {
			t.Fatalf("recording shown without a media report: %+v %v", ctl, err)
		}
		var audited int
		_ = pool2.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'recording.media_written' AND visit_id = $1`,
			string(visit)).Scan(&audited)
		if audited != 1 {
			t.Errorf("%d recording.media_written audit entries, want 1", audited)
		}
		var alerted int
		_ = pool2.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE kind = $1`, alerts.KindRecordingNotWorking).Scan(&alerted)
		if alerted != 0 {
			t.Errorf("%d not-working alerts for a recording that works", alerted)
		}
	})
}

// TestRecorderClaimsOnce forces the recorder's periodic poll and the sync
// a start triggers to run at once, both past the "not recording it yet"
// check, right before claiming: the claim is one atomic step in the
// database, so one of them records and the other does not.
func TestRecorderClaimsOnce(t *testing.T) {
	ctx := t.Context()
	var arrived atomic.Int32
	gate := make(chan struct{})
	srv := StartServerWith(t, recordingConfig(testenv.MinIO(t), nil), func(o *app.Options) {
		o.BeforeRecordingClaim = func(ids.VisitID) {
			if arrived.Add(1) == 2 {
				close(gate)
			}
			select {
			case <-gate:
			case <-time.After(10 * time.Second):
			}
		}
	})
	pool := recPool(t, srv)
	visit, parts := demoVisit(t, pool)
	newPublisher(t, srv, srv.DemoLinks(t)[1], 0)
	if _, err := store.StartRecording(ctx, pool, visit, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	go srv.App.Recorder().SyncNow() // the start's sync, against the poll loop
	select {
	case <-gate:
	case <-time.After(15 * time.Second):
		t.Fatal("the two polls never met before the claim")
	}
	waitFor(t, "the publisher's recording", 20*time.Second, func() bool {
		recs, _ := store.ListRecordings(ctx, pool, store.RecordingFilter{VisitID: visit, Now: time.Now()})
		return len(recs) > 0
	})
	time.Sleep(3 * time.Second) // a second session would have joined and recorded by now
	if n := srv.App.Recorder().Stats().Sessions; n != 1 {
		t.Errorf("%d recorder sessions in the visit, want 1", n)
	}
	rows, err := pool.Query(ctx, `SELECT participant_id::text, count(*) FROM recordings WHERE visit_id = $1 GROUP BY 1`, string(visit))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid string
		var n int
		if err := rows.Scan(&pid, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("participant %s has %d recordings, want 1", pid, n)
		}
		if ids.ParticipantID(pid) != parts["patient"] {
			t.Errorf("a recording of %s, who publishes nothing", pid)
		}
	}
}

// recordingConfig is recordingServer's configuration, for StartServerWith.
func recordingConfig(s3 testenv.S3, tune func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		var b [6]byte
		_, _ = rand.Read(b[:])
		bucket := "ov-rec-test-" + hex.EncodeToString(b[:])
		c.Roles = []string{config.RoleAPI, config.RoleMedia, config.RoleRecorder}
		c.S3 = s3.Config(bucket)
		// Each server anchors its audit trail in a bucket of its own: the
		// dev MinIO is shared by every test and outlives them.
		c.Audit.AnchorBucket = bucket + "-anchors"
		c.Recording.PartSize = 5 << 20
		c.Recording.SpoolMaxBytes = 256 << 20
		if tune != nil {
			tune(c)
		}
	}
}
