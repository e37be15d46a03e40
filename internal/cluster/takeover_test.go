package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/recording"
	"github.com/openvisit/openvisit/signaling"
)

// TestRecorderTakeover runs two recorder processes (`serve --roles
// recorder`) beside an API/media node, records a call, and kills the
// recorder holding the visit (SIGKILL) once each participant's first 5 MiB
// part is in storage. The other recorder takes the visit over within 10 s
// of the kill (ClaimLease and its poll), marks the dead recorder's pieces
// incomplete and recovers them itself — their open multipart uploads
// completed from the parts in storage — and records each participant into
// a second piece. Both pieces of each participant decrypt and parse as
// WebM through the audited API; the library lists them as one recording
// (part 1 and 2, in order, the gap between them stated and true); and no
// multipart upload is left open in the bucket.
func TestRecorderTakeover(t *testing.T) {
	hostIP(t)
	tk := startTakeoverCluster(t)
	tk.recordCall()
	first := tk.firstPieces()
	dead, survivor := tk.holder()
	killed := tk.killAfterFirstParts(dead, first)

	second := tk.secondPieces(first, survivor, killed)
	tk.waitRecoveredBy(survivor, first)
	time.Sleep(4 * time.Second) // some media in the second pieces
	if status, body := tk.prov.do("POST", tk.base+"/stop", struct{}{}); status != http.StatusOK {
		t.Fatalf("stop = %d %s", status, body)
	}
	waitFor(t, "every piece final", 90*time.Second, func() bool { return e2e.FinalRecordings(recordingsOf(tk.c, tk.v), 4) })
	for u := range tk.client.ListIncompleteUploads(context.Background(), tk.bucket, "", true) {
		t.Errorf("multipart upload left open: %s (%v)", u.Key, u.Err)
	}

	admin := tk.c.admin()
	listed := tk.listed(admin)
	for pid, p1 := range first {
		p2 := second[pid]
		t.Run(p1.ParticipantRole, func(t *testing.T) {
			tk.checkJoined(t, admin, listed, p1.ID, p2.ID, killed)
		})
	}
}

// takeover is the cluster of the takeover test and the call it records.
type takeover struct {
	t         *testing.T
	c         *cluster
	bucket    string
	client    *minio.Client
	recs      map[string]*proc // recorder processes by node name
	prov, pat *client
	v         ids.VisitID
	base      string
}

// startTakeoverCluster starts an API/media node and two recorders, all on
// TLS, recording into a fresh bucket with 5 MiB parts and small segments.
func startTakeoverCluster(t *testing.T) *takeover {
	t.Helper()
	s3 := testenv.MinIO(t)
	c := newCluster(t)
	tk := &takeover{t: t, c: c, bucket: randomBucket("ov-rec-takeover-"), recs: map[string]*proc{}}
	common := append(append(clusterTLS(t, c),
		"OPENVISIT_RECORDING_KEYRING_FILE="+filepath.Join(c.dir, "recording-keyring.json"),
		"OPENVISIT_RECORDING_PART_SIZE=5242880",
		fmt.Sprintf("OPENVISIT_RECORDING_SEGMENT_SIZE=%d", crashSegment),
	), s3.Env(tk.bucket)...)
	c.start("api", "api,media", common...)
	c.waitLive("api")
	recorderEnv := append(append([]string{}, common...), "OPENVISIT_TOKEN_SIGNING_KEY_FILE="+c.signKey)
	for _, name := range []string{"rec1", "rec2"} {
		tk.recs[name] = c.start(name, "recorder", recorderEnv...)
	}
	client, err := objstore.New(s3.Config(""))
	if err != nil {
		t.Fatal(err)
	}
	tk.client = client
	return tk
}

// recordCall joins a provider and a patient both publishing large
// synthetic frames (parts fill in seconds) and starts recording with the
// patient's consent.
func (tk *takeover) recordCall() {
	t, c := tk.t, tk.c
	t.Helper()
	tk.prov, _ = c.provider()
	tk.v = tk.prov.newVisit()
	tk.pat = c.patient(tk.v)
	pp := peer{e2e.JoinPeer(t, tk.prov.join(tk.v), e2e.PeerOptions{FrameSize: 40000})}
	bp := peer{e2e.JoinPeer(t, tk.pat.join(tk.v), e2e.PeerOptions{FrameSize: 40000})}
	pp.receiving(t, "provider receiving media", 30*time.Second)
	bp.receiving(t, "patient receiving media", 30*time.Second)
	tk.base = "/api/v1/visits/" + string(tk.v) + "/recording"
	for _, step := range []struct {
		cl   *client
		path string
		body any
	}{{tk.prov, "/request", struct{}{}}, {tk.pat, "/consent", map[string]bool{"accept": true}}, {tk.prov, "/start", struct{}{}}} {
		if status, body := step.cl.do("POST", tk.base+step.path, step.body); status != http.StatusOK {
			t.Fatalf("POST %s = %d %s", step.path, status, body)
		}
	}
}

// firstPieces waits until both participants are recorded and returns
// their recordings by participant.
func (tk *takeover) firstPieces() map[ids.ParticipantID]store.Recording {
	tk.t.Helper()
	waitFor(tk.t, "both participants recorded", 30*time.Second, func() bool { return len(recordingsOf(tk.c, tk.v)) == 2 })
	out := map[ids.ParticipantID]store.Recording{}
	for _, r := range recordingsOf(tk.c, tk.v) {
		out[r.ParticipantID] = r
	}
	return out
}

// holder returns the recorder holding the visit's claim and the other.
func (tk *takeover) holder() (dead, survivor string) {
	var node string
	if err := tk.c.pool.QueryRow(context.Background(), `SELECT recorder_node FROM recording_controls WHERE visit_id = $1`,
		string(tk.v)).Scan(&node); err != nil {
		tk.t.Fatal(err)
	}
	dead, _, _ = strings.Cut(node, "/")
	for name := range tk.recs {
		if name != dead {
			survivor = name
		}
	}
	if tk.recs[dead] == nil {
		tk.t.Fatalf("the claim names %q, not one of the recorders", node)
	}
	tk.t.Logf("%s holds the visit; %s waits", dead, survivor)
	return dead, survivor
}

// killAfterFirstParts kills recorder dead (SIGKILL) once every first
// piece has a part in storage, and returns when.
func (tk *takeover) killAfterFirstParts(dead string, first map[ids.ParticipantID]store.Recording) time.Time {
	t := tk.t
	t.Helper()
	cr := &crashRun{t: t, c: tk.c, bucket: tk.bucket, client: tk.client}
	waitFor(t, "a part of every first piece in storage", 90*time.Second, func() bool {
		for _, r := range first {
			if _, n, _ := cr.storedParts(r.ID); n < 1 {
				return false
			}
		}
		return true
	})
	tk.recs[dead].signal(syscall.SIGKILL)
	killed := time.Now()
	if !tk.recs[dead].wait(10 * time.Second) {
		t.Fatal("the recorder did not die")
	}
	return killed
}

// secondPieces waits until the survivor records both participants again
// and checks that each second piece began within 10 s of the kill.
func (tk *takeover) secondPieces(first map[ids.ParticipantID]store.Recording, survivor string, killed time.Time) map[ids.ParticipantID]store.Recording {
	t := tk.t
	t.Helper()
	waitFor(t, "the survivor to record both participants", 60*time.Second, func() bool { return len(recordingsOf(tk.c, tk.v)) == 4 })
	out := map[ids.ParticipantID]store.Recording{}
	for _, r := range recordingsOf(tk.c, tk.v) {
		if r.ID == first[r.ParticipantID].ID {
			continue
		}
		out[r.ParticipantID] = r
		var node string
		_ = tk.c.pool.QueryRow(context.Background(), `SELECT recorder_node FROM recordings WHERE id = $1`, r.ID).Scan(&node)
		after := r.StartedAt.Sub(killed)
		t.Logf("%s: second piece by %s began %v after the kill", r.ParticipantRole, node, after.Round(10*time.Millisecond))
		if node != survivor {
			t.Errorf("%s: second piece recorded by %q, want %q", r.ParticipantRole, node, survivor)
		}
		if after < 0 || after > 10*time.Second {
			t.Errorf("%s: second piece began %v after the kill, want within 10 s", r.ParticipantRole, after)
		}
	}
	if len(out) != 2 {
		t.Fatalf("second pieces: %+v", out)
	}
	return out
}

// waitRecoveredBy waits until the first pieces are incomplete with no
// chunk uploading, and checks that survivor recovered them (the audit
// names it, and the takeover marked them, not the sweep's longer lease).
func (tk *takeover) waitRecoveredBy(survivor string, first map[ids.ParticipantID]store.Recording) {
	t := tk.t
	t.Helper()
	cr := &crashRun{t: t, c: tk.c}
	for _, r := range first {
		waitFor(t, "recovery of "+r.ParticipantRole+"'s first piece", 60*time.Second, func() bool { _, _, ok := cr.recovered(r.ID); return ok })
		var by []string
		rows, err := tk.c.pool.Query(context.Background(), `SELECT DISTINCT actor_id FROM audit_events
			WHERE action = $1 AND resource_id = $2`, recording.ActionRecordingRecover, r.ID)
		if err == nil {
			for rows.Next() {
				var a string
				_ = rows.Scan(&a)
				by = append(by, a)
			}
			rows.Close()
		}
		if len(by) != 1 || by[0] != "recorder:"+survivor {
			t.Errorf("%s's first piece recovered by %v, want recorder:%s", r.ParticipantRole, by, survivor)
		}
		// Marked by the takeover, not by the sweep's longer lease.
		var reason string
		_ = tk.c.pool.QueryRow(context.Background(), `SELECT reason FROM audit_events WHERE action = $1 AND resource_id = $2`,
			recording.ActionRecordingSweep, r.ID).Scan(&reason)
		if !strings.HasPrefix(reason, "recorder lease lapsed; taken over from ") {
			t.Errorf("%s's first piece marked incomplete with reason %q, want by the takeover", r.ParticipantRole, reason)
		}
	}
}

// listedRecording is an entry of the library's listing.
type listedRecording struct {
	store.Recording
	recordings.Piece
}

// listed is the visit's recordings as the library lists them to admin.
func (tk *takeover) listed(admin *client) map[string]listedRecording {
	t := tk.t
	t.Helper()
	var res struct {
		Recordings []listedRecording `json:"recordings"`
	}
	status, body := admin.do("GET", "/api/v1/recordings?visit_id="+string(tk.v), nil)
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil {
		t.Fatalf("list: %d %s", status, body)
	}
	out := map[string]listedRecording{}
	for _, r := range res.Recordings {
		out[r.ID] = r
	}
	return out
}

// checkJoined checks one participant's pieces: listed and described as
// parts 1 and 2 of one recording with the true gap, every chunk played
// through the API decrypting and parsing as WebM, the first piece ending
// no later than the kill and the second starting within 10 s of it.
func (tk *takeover) checkJoined(t *testing.T, admin *client, listed map[string]listedRecording, id1, id2 string, killed time.Time) {
	l1, l2 := listed[id1], listed[id2]
	if l1.SeriesID != id1 || l2.SeriesID != id1 || l1.Part != 1 || l2.Part != 2 || l1.Parts != 2 || l2.Parts != 2 {
		t.Fatalf("listing: piece 1 %+v, piece 2 %+v: want parts 1 and 2 of series %s", l1.Piece, l2.Piece, id1)
	}
	var view signaling.RecordingView
	status, body := admin.do("GET", "/api/v1/recordings/"+id2, nil)
	if status != http.StatusOK || json.Unmarshal(body, &view) != nil {
		t.Fatalf("metadata: %d %s", status, body)
	}
	if len(view.Series) != 2 || view.Series[0].ID != id1 || view.Series[1].ID != id2 || view.Part != 2 {
		t.Fatalf("metadata of piece 2: part %d, series %+v", view.Part, view.Series)
	}
	p1, p2 := view.Series[0], view.Series[1]
	if p1.EndedAt == nil {
		t.Fatal("piece 1 has no end")
	}
	gap := p2.StartedAt.Sub(*p1.EndedAt)
	if p2.GapBeforeMS != gap.Milliseconds() || l2.GapBeforeMS != p2.GapBeforeMS {
		t.Errorf("stated gap %d ms (listing %d ms), the pieces are %v apart", p2.GapBeforeMS, l2.GapBeforeMS, gap)
	}
	if p1.EndedAt.After(killed) || p2.StartedAt.Sub(killed) > 10*time.Second {
		t.Errorf("piece 1 ends %v, piece 2 starts %v, the recorder was killed at %v", p1.EndedAt, p2.StartedAt, killed)
	}
	// At most the takeover's gap: what the dead recorder had not uploaded
	// (less than one 5 MiB part, ≈4 s of this media) and the takeover.
	if gap > 20*time.Second {
		t.Errorf("gap between the pieces %v", gap)
	}
	span1, span2 := tk.playPiece(t, admin, id1), tk.playPiece(t, admin, id2)
	t.Logf("piece 1 %v (to %v before the kill), gap %v, piece 2 %v", span1.Round(10*time.Millisecond),
		killed.Sub(*p1.EndedAt).Round(10*time.Millisecond), gap.Round(10*time.Millisecond), span2.Round(10*time.Millisecond))
}

// playPiece plays every chunk of a piece through the API as admin: each
// must decrypt (the server authenticates every segment it serves) and
// parse as WebM with a keyframe and audio. It returns the media span.
func (tk *takeover) playPiece(t *testing.T, admin *client, id string) time.Duration {
	t.Helper()
	var view signaling.RecordingView
	status, body := admin.do("GET", "/api/v1/recordings/"+id, nil)
	if status != http.StatusOK || json.Unmarshal(body, &view) != nil || len(view.Chunks) == 0 {
		t.Fatalf("metadata of %s: %d %s", id, status, body)
	}
	sort.Slice(view.Chunks, func(i, j int) bool { return view.Chunks[i].Seq < view.Chunks[j].Seq })
	var span time.Duration
	for _, ch := range view.Chunks {
		if ch.MediaURL == "" {
			t.Errorf("piece %s chunk %d is %s: not playable", id, ch.Seq, ch.Status)
			continue
		}
		resp := admin.Do("GET", ch.MediaURL, nil, nil)
		if resp.Status != http.StatusOK || resp.ReadErr != nil {
			t.Fatalf("piece %s chunk %d: %d %v", id, ch.Seq, resp.Status, resp.ReadErr)
		}
		inspect := recording.InspectWebM
		if ch.Truncated {
			inspect = recording.InspectWebMPrefix
		}
		in, err := inspect(bytes.NewReader(resp.Body))
		if err != nil {
			t.Fatalf("piece %s chunk %d (truncated %v): %v", id, ch.Seq, ch.Truncated, err)
		}
		vt, _ := in.Track("V_VP8")
		at, _ := in.Track("A_OPUS")
		if vt.Keyframes == 0 || at.Frames == 0 {
			t.Errorf("piece %s chunk %d: video %d frames (%d key), audio %d frames", id, ch.Seq, vt.Frames, vt.Keyframes, at.Frames)
		}
		span += in.Span()
	}
	return span
}
