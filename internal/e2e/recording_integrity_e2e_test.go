package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
)

// clipDir holds the recorded media the load test publishes (real VP8 and
// Opus, which Chromium decodes).
const clipDir = "../loadtest/testdata"

// TestTamperedRecordingAlerts: one byte of a stored recording is flipped in
// the middle of its object. The admin's player in Chromium says the
// recording failed an integrity check (the server aborts the response at
// the bad segment and then refuses the chunk); the access is audited as a
// failure with reason integrity; a critical integrity_failure alert is
// raised once; no byte of the damaged segment or after it reaches a client,
// and a response that had already begun ends as a failed transfer, not a
// clean one.
func TestTamperedRecordingAlerts(t *testing.T) {
	s3 := testenv.MinIO(t)
	// Small segments: a few seconds of media make many, so the damage is
	// well inside the object (not in the first segment or the last, which
	// Open checks before the status is sent).
	srv := recordingServer(t, s3, func(c *config.Config) { c.Recording.SegmentSize = 16 << 10 })
	pool := recPool(t, srv)
	visit, rec, ch := recordClip(t, srv, pool)
	admin, adminID := staffClient(t, srv, pool, "admin")
	url := fmt.Sprintf("/api/v1/recordings/%s/chunks/0", rec.ID)
	original := admin.must("GET", url, nil, 200).Body
	if ch.Size < 20*16<<10 {
		t.Fatalf("the chunk is %d bytes; the test needs many segments", ch.Size)
	}
	seg := flipMiddleByte(t, srv, s3, ch)

	playerShowsIntegrityFailure(t, srv, admin, visit)
	checkIntegrityAudited(t, pool, adminID, rec.ID, seg)
	if n := integrityAlerts(t, pool, rec.ID); n != 1 {
		t.Errorf("%d integrity_failure alerts, want 1", n)
	}
	// From now on the chunk is refused before any byte.
	r := admin.do("GET", url, nil, map[string]string{"Range": "bytes=0-1000"})
	if r.Status != 500 || len(r.Body) != 0 || r.Header.Get("X-Error-Code") != "integrity_failed" {
		t.Errorf("after the failure: %d, %d body bytes, code %q; want 500 integrity_failed, no body", r.Status, len(r.Body), r.Header.Get("X-Error-Code"))
	}
	if n := integrityAlerts(t, pool, rec.ID); n != 1 {
		t.Errorf("%d alerts after a refused request, want still 1", n)
	}
	checkStreamIntoDamage(t, pool, admin, url, rec.ID, original)
	if s := srv.Logs(); !strings.Contains(s, "recording failed an integrity check") {
		t.Error("the failure is not logged as such")
	}
}

// recordClip records ≈5 s of a publisher sending the real clip in the demo
// visit and returns the visit, the final recording and its one chunk.
func recordClip(t *testing.T, srv *Server, pool *pgxpool.Pool) (ids.VisitID, store.Recording, store.Chunk) {
	t.Helper()
	ctx := t.Context()
	clip := LoadClip(t, clipDir)
	pub := JoinPeer(t, redeemDemo(t, srv, srv.DemoLinks(t)[1]), PeerOptions{ConfigureWebRTC: LoopbackWebRTC, Clip: clip})
	visit, rec := recordDemo(t, srv, pool, pub, 1, func() { time.Sleep(5 * time.Second) })
	chunks, err := store.ChunksOf(ctx, pool, rec.ID)
	if err != nil || len(chunks) != 1 || chunks[0].Status != store.ChunkComplete {
		t.Fatalf("chunks: %v %+v", err, chunks)
	}
	return visit, rec, chunks[0]
}

// flipMiddleByte flips one byte in the middle segment of the chunk's
// stored object and returns that segment's index.
func flipMiddleByte(t *testing.T, srv *Server, s3 testenv.S3, ch store.Chunk) int {
	t.Helper()
	ctx := t.Context()
	lib := srv.App.RecordingLibrary()
	obj, err := lib.Objects.Get(ctx, ch.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(obj) / 2
	obj[mid] ^= 0x20
	client, err := objstore.New(s3.Config(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(ctx, lib.Objects.Bucket(), ch.ObjectKey, bytes.NewReader(obj), int64(len(obj)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	seg := mid / (16 << 10)
	t.Logf("flipped object byte %d of %d (segment %d)", mid, len(obj), seg)
	return seg
}

// playerShowsIntegrityFailure: the admin plays the visit in Chromium, and
// the player says the recording failed an integrity check.
func playerShowsIntegrityFailure(t *testing.T, srv *Server, admin *apiClient, visit ids.VisitID) {
	t.Helper()
	ctx := t.Context()
	ab := NewBrowser(t, WithName("admin"))
	signInBrowser(t, ab, srv, admin)
	ab.Navigate(t, srv.URL+"/recordings?visit="+string(visit))
	ab.WaitFor(t, ctx, `document.body.dataset.loaded === 'true' && document.querySelectorAll('li.recording').length === 1`, pageTimeout)
	ab.Click(t, fmt.Sprintf(`section[data-visit-id=%q] [data-action="play"]`, visit))
	ab.WaitFor(t, ctx, `!document.getElementById('player').hidden && !document.getElementById('player-play').disabled`, pageTimeout)
	ab.Click(t, "#player-play")
	const integrityShown = `document.getElementById('player-status').textContent.startsWith('This recording failed an integrity check')
    && document.querySelector('#player-videos .lane-note').textContent.startsWith('This recording failed an integrity check')
    && !document.querySelector('#player-videos .lane-note').hidden`
	if err := ab.Poll(ctx, integrityShown, callTimeout); err != nil {
		ab.Dump(t, "player", `({status: document.getElementById('player-status').textContent,
      note: document.querySelector('#player-videos .lane-note') && document.querySelector('#player-videos .lane-note').textContent,
      error: document.querySelector('#player-videos video').error && document.querySelector('#player-videos video').error.code,
      ready: document.querySelector('#player-videos video').readyState})`)
		t.Fatalf("the player does not report the integrity failure: %v", err)
	}
	screenshot(t, ab, "player-integrity.png")
}

// checkIntegrityAudited: the access is audited as a failure with the
// reason (the browser's stream hit the damaged segment; later requests
// were refused), the first naming the damaged segment.
func checkIntegrityAudited(t *testing.T, pool *pgxpool.Pool, adminID ids.UserID, recID string, seg int) {
	t.Helper()
	var reasons []string
	rows, err := pool.Query(t.Context(), `SELECT reason FROM audit_events WHERE action = 'recording.play'
		AND actor_id = $1 AND resource_id = $2 AND outcome = 'failure' AND reason LIKE 'integrity%' ORDER BY seq`, string(adminID), recID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		_ = rows.Scan(&r)
		reasons = append(reasons, r)
	}
	rows.Close()
	t.Logf("failed accesses audited: %q", reasons)
	if len(reasons) == 0 || reasons[0] != fmt.Sprintf("integrity chunk=0 segment=%d", seg) {
		t.Errorf("failed accesses %q; want the first to name segment %d", reasons, seg)
	}
}

// integrityAlerts counts the critical integrity_failure alerts about the
// recording.
func integrityAlerts(t *testing.T, pool *pgxpool.Pool, recID string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM alerts WHERE kind = $1 AND severity = 'critical' AND subject = $2`,
		alerts.KindIntegrityFailure, recID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkStreamIntoDamage: a response that began before the damage was known
// (the mark cleared to show it again) has sent its status, so the body
// must fail, and what arrived is authentic plaintext from before the bad
// segment; the chunk is marked again.
func checkStreamIntoDamage(t *testing.T, pool *pgxpool.Pool, admin *apiClient, url, recID string, original []byte) {
	t.Helper()
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `UPDATE recording_chunks SET integrity_failed_at = NULL WHERE recording_id = $1`, recID); err != nil {
		t.Fatal(err)
	}
	r := admin.do("GET", url, nil, nil)
	if r.Status != 200 || r.ReadErr == nil {
		t.Errorf("streaming into the damage: status %d, read error %v; want 200 and a failed transfer", r.Status, r.ReadErr)
	}
	if len(r.Body) >= len(original) || !bytes.HasPrefix(original, r.Body) {
		t.Errorf("received %d of %d bytes; want a strict prefix of the original plaintext", len(r.Body), len(original))
	}
	var marked bool
	if err := pool.QueryRow(ctx, `SELECT integrity_failed_at IS NOT NULL FROM recording_chunks WHERE recording_id = $1`, recID).Scan(&marked); err != nil || !marked {
		t.Errorf("the chunk is not marked after the second failure: %v", err)
	}
}
