package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/recording"
	"github.com/openvisit/openvisit/signaling"
)

// TestRecordingContinuesAfterNodeLoss records a call on media node m1,
// kills m1 (SIGKILL) mid-recording, and checks that the recorder follows
// the visit to m2 once the participants are back there: each participant
// has a recording of the time before the loss (finalized, decryptable) and
// a new one of the time after, and together they cover the call apart from
// the gap.
func TestRecordingContinuesAfterNodeLoss(t *testing.T) {
	testRecordingNodeLoss(t, syscall.SIGKILL)
}

// TestRecordingFollowsVisitOffHungNode is the same with m1 frozen
// (SIGSTOP), as a hung or unreachable host: no socket closes, so the
// recorder must notice that the visit moved rather than wait for its
// session on m1 to fail.
func TestRecordingFollowsVisitOffHungNode(t *testing.T) {
	testRecordingNodeLoss(t, syscall.SIGSTOP)
}

func testRecordingNodeLoss(t *testing.T, sig syscall.Signal) {
	hostIP(t)
	s3 := testenv.MinIO(t)
	c := newCluster(t)
	// One deployment certificate for every node: the recorder dials media
	// nodes over verified TLS.
	certDir := filepath.Join(c.dir, "tls")
	if _, err := certs.SelfSigned(certDir, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	common := []string{
		"OPENVISIT_TLS_CERT_FILE=" + filepath.Join(certDir, "selfsigned-cert.pem"),
		"OPENVISIT_TLS_KEY_FILE=" + filepath.Join(certDir, "selfsigned-key.pem"),
	}
	c.start("api", "api,recorder", append(common, s3.Env("ov-rec-cluster-"+hex.EncodeToString(b[:]))...)...)
	m1 := c.start("m1", "media", common...)
	c.waitLive("m1")
	prov, _ := c.provider()
	v := prov.newVisit()
	if n := c.nodeOf(v); n != "m1" {
		t.Fatalf("visit placed on %q, want m1 (the only node)", n)
	}
	pat := c.patient(v)
	a, bp := joinPeer(t, prov.join(v)), joinPeer(t, pat.join(v))
	a.receiving(t, "provider receiving media on m1", 30*time.Second)
	bp.receiving(t, "patient receiving media on m1", 30*time.Second)
	c.start("m2", "media", common...)
	c.waitLive("m1", "m2")

	// Consent, then record on m1.
	base := "/api/v1/visits/" + string(v) + "/recording"
	must := func(cl *client, method, path string, want int) []byte {
		t.Helper()
		var body any
		if method != "GET" {
			body = struct{}{}
		}
		status, resp := cl.do(method, path, body)
		if status != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, status, resp, want)
		}
		return resp
	}
	must(prov, "POST", base+"/request", http.StatusOK)
	if status, body := pat.do("POST", base+"/consent", map[string]bool{"accept": true}); status != http.StatusOK {
		t.Fatalf("consent = %d %s", status, body)
	}
	must(prov, "POST", base+"/start", http.StatusOK)
	started := time.Now()
	ctx := context.Background()
	list := func() []store.Recording {
		recs, _ := store.ListRecordings(ctx, c.pool, store.RecordingFilter{VisitID: v, Now: time.Now()})
		return recs
	}
	waitFor(t, "the recorder to record both participants on m1", 30*time.Second, func() bool { return len(list()) == 2 })
	t.Logf("recording on m1 %v after the start command", time.Since(started).Round(100*time.Millisecond))
	time.Sleep(6 * time.Second) // some media to record on m1

	m1.signal(sig)
	killed := time.Now()
	if sig == syscall.SIGKILL {
		waitFor(t, "both sockets to drop", 10*time.Second, func() bool { return a.dropped() && bp.dropped() })
	} // else clients give up on the frozen node (its media stops) and rejoin
	a.close()
	bp.close()
	a2, b2 := rejoin(t, prov, v, m1, killed), rejoin(t, pat, v, m1, killed)
	a2.receiving(t, "provider receiving media on m2", 20*time.Second)
	b2.receiving(t, "patient receiving media on m2", 20*time.Second)
	if n := c.nodeOf(v); n != "m2" {
		t.Fatalf("visit on %q after the rejoin, want m2", n)
	}
	// The recorder follows the visit: a new recording per participant.
	waitFor(t, "the recorder to record both participants on m2", 30*time.Second, func() bool { return len(list()) == 4 })
	resumed := time.Now()
	t.Logf("recording on m2 %v after m1 was killed", resumed.Sub(killed).Round(100*time.Millisecond))
	time.Sleep(6 * time.Second) // some media to record on m2
	must(prov, "POST", base+"/stop", http.StatusOK)
	stopped := time.Now()

	var recs []store.Recording
	waitFor(t, "4 final recordings", 60*time.Second, func() bool {
		recs = list()
		if len(recs) != 4 {
			return false
		}
		for _, r := range recs {
			if r.Status != store.RecComplete && r.Status != store.RecIncomplete {
				return false
			}
		}
		return true
	})

	// Retrieval through the API as an admin: every chunk decrypts and parses.
	u, err := store.CreateUser(ctx, c.pool, "admin-"+hex.EncodeToString(b[:])+"@clinic.test", "Admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	admin := c.session(store.NewSession{Kind: store.SessionStaff, UserID: u.ID})
	type part struct {
		rec  store.Recording
		span time.Duration
	}
	parts := map[ids.ParticipantID][]part{}
	for _, r := range recs {
		var view signaling.RecordingView
		if err := json.Unmarshal(must(admin, "GET", "/api/v1/recordings/"+r.ID, http.StatusOK), &view); err != nil {
			t.Fatal(err)
		}
		if len(view.Chunks) == 0 {
			t.Fatalf("recording %s (%s, %s) has no chunks", r.ID, r.ParticipantRole, r.Status)
		}
		var span time.Duration
		for _, ch := range view.Chunks {
			status, body := admin.do("GET", ch.MediaURL, nil)
			if status != http.StatusOK {
				t.Fatalf("recording %s chunk %d = %d", r.ID, ch.Seq, status)
			}
			in, err := recording.InspectWebM(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("recording %s chunk %d: %v", r.ID, ch.Seq, err)
			}
			vt, _ := in.Track("V_VP8")
			at, _ := in.Track("A_OPUS")
			if vt.Frames == 0 || vt.Keyframes == 0 || at.Frames == 0 {
				t.Errorf("recording %s chunk %d: video %d frames (%d key), audio %d frames", r.ID, ch.Seq, vt.Frames, vt.Keyframes, at.Frames)
			}
			span += time.Duration(max(vt.LastMS, at.LastMS)-min(vt.FirstMS, at.FirstMS)) * time.Millisecond
		}
		parts[r.ParticipantID] = append(parts[r.ParticipantID], part{r, span})
	}
	if len(parts) != 2 {
		t.Fatalf("recordings of %d participants, want 2", len(parts))
	}
	for pid, ps := range parts {
		sort.Slice(ps, func(i, j int) bool { return ps[i].rec.StartedAt.Before(ps[j].rec.StartedAt) })
		if len(ps) != 2 {
			t.Errorf("participant %s has %d recordings, want 2 (before and after the loss)", pid, len(ps))
			continue
		}
		before, after := ps[0], ps[1]
		if !before.rec.StartedAt.Before(killed) || after.rec.StartedAt.Before(killed) {
			t.Errorf("participant %s: recordings started at %v and %v, m1 killed at %v", pid, before.rec.StartedAt, after.rec.StartedAt, killed)
		}
		if after.rec.Status != store.RecComplete {
			t.Errorf("participant %s: the recording on m2 is %s, want complete", pid, after.rec.Status)
		}
		// The loss costs the gap (node counted dead, clients' rejoin,
		// recorder's rejoin) and little else. Each part starts at the first
		// keyframe the recorder sees: the synthetic publishers ignore PLI
		// and send one every 2 s, so a part may miss up to 2 s at its start
		// (and a moment at its end).
		const slack = 3 * time.Second
		gap := after.rec.StartedAt.Sub(killed)
		window := stopped.Sub(before.rec.StartedAt)
		total := before.span + after.span
		if want := killed.Sub(before.rec.StartedAt) - slack; before.span < want {
			t.Errorf("participant %s: recorded %v before the loss, want ≥ %v", pid, before.span, want)
		}
		if want := stopped.Sub(after.rec.StartedAt) - slack; after.span < want {
			t.Errorf("participant %s: recorded %v after the loss, want ≥ %v", pid, after.span, want)
		}
		t.Logf("participant %s (%s): before %v (%s), gap %v, after %v (%s); recorded %v of %v",
			pid, before.rec.ParticipantRole, before.span.Round(10*time.Millisecond), before.rec.Status,
			gap.Round(10*time.Millisecond), after.span.Round(10*time.Millisecond), after.rec.Status,
			total.Round(10*time.Millisecond), window.Round(10*time.Millisecond))
		if gap > 20*time.Second {
			t.Errorf("participant %s: recording resumed %v after the loss", pid, gap)
		}
		if total < window-gap-2*slack {
			t.Errorf("participant %s: recorded %v of %v with a %v gap", pid, total, window, gap)
		}
	}
}
