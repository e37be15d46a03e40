package cluster

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/e2e"
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
	nl := startNodeLossCall(t)
	nl.recordOnM1()
	killed := nl.loseM1(sig)
	stopped := nl.recordOnM2(killed)
	recs := nl.waitFinal()
	parts := nl.retrieveParts(nl.c.admin(), recs)
	if len(parts) != 2 {
		t.Fatalf("recordings of %d participants, want 2", len(parts))
	}
	for pid, ps := range parts {
		checkCoverage(t, pid, ps, killed, stopped)
	}
}

// nodeLoss is a recorded call that loses its media node m1.
type nodeLoss struct {
	t         *testing.T
	c         *cluster
	m1        *proc
	prov, pat *client
	v         ids.VisitID
	base      string // the visit's recording API
	a, bp     peer   // the provider and the patient on m1
}

// recordedPart is one recording of a participant and the media it spans.
type recordedPart struct {
	rec  store.Recording
	span time.Duration
}

// startNodeLossCall starts an API node that records and a media node m1,
// all on one deployment certificate, places a call of a provider and a
// patient on m1, and then starts a second media node m2.
func startNodeLossCall(t *testing.T) *nodeLoss {
	t.Helper()
	s3 := testenv.MinIO(t)
	c := newCluster(t)
	common := clusterTLS(t, c)
	c.start("api", "api,recorder", append(common, s3.Env(randomBucket("ov-rec-cluster-"))...)...)
	nl := &nodeLoss{t: t, c: c, m1: c.start("m1", "media", common...)}
	c.waitLive("m1")
	nl.prov, _ = c.provider()
	nl.v = nl.prov.newVisit()
	if n := c.nodeOf(nl.v); n != "m1" {
		t.Fatalf("visit placed on %q, want m1 (the only node)", n)
	}
	nl.pat = c.patient(nl.v)
	nl.a, nl.bp = joinPeer(t, nl.prov.join(nl.v)), joinPeer(t, nl.pat.join(nl.v))
	nl.a.receiving(t, "provider receiving media on m1", 30*time.Second)
	nl.bp.receiving(t, "patient receiving media on m1", 30*time.Second)
	c.start("m2", "media", common...)
	c.waitLive("m1", "m2")
	nl.base = "/api/v1/visits/" + string(nl.v) + "/recording"
	return nl
}

// must sends the request as cl (an empty body unless a GET), fails the
// test unless it answers want, and returns the answer's body.
func must(t *testing.T, cl *client, method, path string, want int) []byte {
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

// recordOnM1 asks for consent, starts recording on m1, and lets some media
// be recorded there.
func (nl *nodeLoss) recordOnM1() {
	t := nl.t
	t.Helper()
	must(t, nl.prov, "POST", nl.base+"/request", http.StatusOK)
	if status, body := nl.pat.do("POST", nl.base+"/consent", map[string]bool{"accept": true}); status != http.StatusOK {
		t.Fatalf("consent = %d %s", status, body)
	}
	must(t, nl.prov, "POST", nl.base+"/start", http.StatusOK)
	started := time.Now()
	waitFor(t, "the recorder to record both participants on m1", 30*time.Second, func() bool { return len(recordingsOf(nl.c, nl.v)) == 2 })
	t.Logf("recording on m1 %v after the start command", time.Since(started).Round(100*time.Millisecond))
	time.Sleep(6 * time.Second) // some media to record on m1
}

// loseM1 sends m1 sig and brings both participants back on m2; it returns
// when m1 was lost.
func (nl *nodeLoss) loseM1(sig syscall.Signal) time.Time {
	t := nl.t
	t.Helper()
	nl.m1.signal(sig)
	killed := time.Now()
	if sig == syscall.SIGKILL {
		waitFor(t, "both sockets to drop", 10*time.Second, func() bool { return nl.a.dropped() && nl.bp.dropped() })
	} // else clients give up on the frozen node (its media stops) and rejoin
	nl.a.close()
	nl.bp.close()
	a2, b2 := rejoin(t, nl.prov, nl.v, nl.m1, killed), rejoin(t, nl.pat, nl.v, nl.m1, killed)
	a2.receiving(t, "provider receiving media on m2", 20*time.Second)
	b2.receiving(t, "patient receiving media on m2", 20*time.Second)
	if n := nl.c.nodeOf(nl.v); n != "m2" {
		t.Fatalf("visit on %q after the rejoin, want m2", n)
	}
	return killed
}

// recordOnM2 waits for the recorder to follow the visit (a new recording
// per participant), lets some media be recorded on m2, and stops the
// recording; it returns when it stopped.
func (nl *nodeLoss) recordOnM2(killed time.Time) time.Time {
	t := nl.t
	t.Helper()
	waitFor(t, "the recorder to record both participants on m2", 30*time.Second, func() bool { return len(recordingsOf(nl.c, nl.v)) == 4 })
	resumed := time.Now()
	t.Logf("recording on m2 %v after m1 was killed", resumed.Sub(killed).Round(100*time.Millisecond))
	time.Sleep(6 * time.Second) // some media to record on m2
	must(t, nl.prov, "POST", nl.base+"/stop", http.StatusOK)
	return time.Now()
}

// waitFinal waits until the visit has 4 recordings, each complete or
// incomplete, and returns them.
func (nl *nodeLoss) waitFinal() []store.Recording {
	var recs []store.Recording
	waitFor(nl.t, "4 final recordings", 60*time.Second, func() bool {
		recs = recordingsOf(nl.c, nl.v)
		return e2e.FinalRecordings(recs, 4)
	})
	return recs
}

// retrieveParts retrieves every recording through the API as admin: every
// chunk must decrypt and parse. It returns each participant's recordings
// with the media they span.
func (nl *nodeLoss) retrieveParts(admin *client, recs []store.Recording) map[ids.ParticipantID][]recordedPart {
	t := nl.t
	t.Helper()
	parts := map[ids.ParticipantID][]recordedPart{}
	for _, r := range recs {
		var view signaling.RecordingView
		if err := json.Unmarshal(must(t, admin, "GET", "/api/v1/recordings/"+r.ID, http.StatusOK), &view); err != nil {
			t.Fatal(err)
		}
		if len(view.Chunks) == 0 {
			t.Fatalf("recording %s (%s, %s) has no chunks", r.ID, r.ParticipantRole, r.Status)
		}
		var span time.Duration
		for _, ch := range view.Chunks {
			span += chunkSpan(t, admin, r, ch)
		}
		parts[r.ParticipantID] = append(parts[r.ParticipantID], recordedPart{r, span})
	}
	return parts
}

// chunkSpan fetches one chunk as admin, checks that it holds video with a
// keyframe and audio, and returns the time its media spans.
func chunkSpan(t *testing.T, admin *client, r store.Recording, ch signaling.ChunkView) time.Duration {
	t.Helper()
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
	return time.Duration(max(vt.LastMS, at.LastMS)-min(vt.FirstMS, at.FirstMS)) * time.Millisecond
}

// checkCoverage checks one participant's recordings: one before the loss
// and one (complete) after, which together cover the call but for the gap.
func checkCoverage(t *testing.T, pid ids.ParticipantID, ps []recordedPart, killed, stopped time.Time) {
	t.Helper()
	sort.Slice(ps, func(i, j int) bool { return ps[i].rec.StartedAt.Before(ps[j].rec.StartedAt) })
	if len(ps) != 2 {
		t.Errorf("participant %s has %d recordings, want 2 (before and after the loss)", pid, len(ps))
		return
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
