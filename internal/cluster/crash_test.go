package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/minio/minio-go/v7"
	"github.com/tink-crypto/tink-go/v2/streamingaead/subtle"

	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/recording"
	"github.com/openvisit/openvisit/recording/streamaead"
	"github.com/openvisit/openvisit/signaling"
)

// crashSegment is the streaming AEAD segment size of the crash test: small
// enough that a few seconds of media fill several segments.
const crashSegment = 256 << 10

// TestRecorderCrashKeepsUploadedParts records a call with the recorder as
// its own process (`serve --roles recorder`), kills it with SIGKILL as soon
// as the first 5 MiB part of a chunk has reached storage, and starts it
// again. The restarted recorder completes the open multipart uploads from
// the parts in storage and the ones still in its spool: each recording of
// the time before the crash is incomplete, its chunk kept up to its last
// whole segment with its real duration, played through the audited API,
// decrypted independently with tink-go, and played to its end by Chromium.
// Recording goes on after the restart; once stopped, no multipart upload is
// left open in the bucket.
func TestRecorderCrashKeepsUploadedParts(t *testing.T) {
	hostIP(t)
	cr := startCrashCluster(t)
	cr.recordCall()
	big, real := cr.recordingsByRole()
	killed, stored := cr.killRecorderAfterFirstPart(big)

	// Restart: the recorder recovers what the killed process left.
	cr.c.start("rec", "recorder", cr.recorderEnv...)
	for _, id := range []string{big.ID, real.ID} {
		waitFor(t, "recovery of "+id, 60*time.Second, func() bool { _, _, ok := cr.recovered(id); return ok })
	}

	admin := cr.c.admin()
	params := streamaead.Params{SegmentSize: crashSegment}
	for _, tc := range []crashCase{
		{"patient (first part from storage)", big, streamaead.PrefixPlaintextSize(uint64(stored/crashSegment), params), false},
		{"provider (from the spool)", real, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) { cr.checkRecovered(t, admin, tc, killed) })
	}
	cr.stopAndCheckNoUploadOpen()
}

// crashRun is the cluster of the recorder crash test and the call it
// records.
type crashRun struct {
	t           *testing.T
	c           *cluster
	bucket      string
	keyring     string
	recorderEnv []string // the recorder process's environment
	rec1        *proc    // the recorder that is killed
	client      *minio.Client
	prov, pat   *client
	v           ids.VisitID
	base        string // the visit's recording API
}

// crashCase is one recording the restarted recorder recovered.
type crashCase struct {
	name     string
	rec      store.Recording
	atLeast  int64 // plaintext bytes that must have been kept
	chromium bool
}

// startCrashCluster starts an API/media node and a recorder of its own,
// both on TLS, recording into a fresh bucket with small segments and 5 MiB
// parts.
func startCrashCluster(t *testing.T) *crashRun {
	t.Helper()
	s3 := testenv.MinIO(t)
	c := newCluster(t)
	cr := &crashRun{t: t, c: c, bucket: randomBucket("ov-rec-crash-"), keyring: filepath.Join(c.dir, "recording-keyring.json")}
	common := append(append(clusterTLS(t, c),
		"OPENVISIT_RECORDING_KEYRING_FILE="+cr.keyring,
		"OPENVISIT_RECORDING_PART_SIZE=5242880",
		fmt.Sprintf("OPENVISIT_RECORDING_SEGMENT_SIZE=%d", crashSegment),
	), s3.Env(cr.bucket)...)
	cr.recorderEnv = append(append([]string{}, common...), "OPENVISIT_TOKEN_SIGNING_KEY_FILE="+c.signKey)
	c.start("api", "api,media", common...)
	c.waitLive("api")
	cr.rec1 = c.start("rec", "recorder", cr.recorderEnv...)
	client, err := objstore.New(s3.Config(""))
	if err != nil {
		t.Fatal(err)
	}
	cr.client = client
	return cr
}

// recordCall joins a provider publishing real VP8/Opus (for Chromium) and a
// patient publishing large synthetic frames (≈1.2 MB/s: parts fill in
// seconds), and starts recording with the patient's consent.
func (cr *crashRun) recordCall() {
	t, c := cr.t, cr.c
	t.Helper()
	cr.prov, _ = c.provider()
	cr.v = cr.prov.newVisit()
	cr.pat = c.patient(cr.v)
	clip := e2e.LoadClip(t, "../loadtest/testdata")
	pp := peer{e2e.JoinPeer(t, cr.prov.join(cr.v), e2e.PeerOptions{Clip: clip})}
	bp := peer{e2e.JoinPeer(t, cr.pat.join(cr.v), e2e.PeerOptions{FrameSize: 40000})}
	pp.receiving(t, "provider receiving media", 30*time.Second)
	bp.receiving(t, "patient receiving media", 30*time.Second)
	cr.base = "/api/v1/visits/" + string(cr.v) + "/recording"
	for _, step := range []struct {
		cl   *client
		path string
		body any
	}{{cr.prov, "/request", struct{}{}}, {cr.pat, "/consent", map[string]bool{"accept": true}}, {cr.prov, "/start", struct{}{}}} {
		if status, body := step.cl.do("POST", cr.base+step.path, step.body); status != http.StatusOK {
			t.Fatalf("POST %s = %d %s", step.path, status, body)
		}
	}
}

// list is the visit's recordings.
func (cr *crashRun) list() []store.Recording { return recordingsOf(cr.c, cr.v) }

// recordingsByRole waits until both participants are recorded and returns
// the patient's recording (big frames) and the provider's (real media).
func (cr *crashRun) recordingsByRole() (big, real store.Recording) {
	t := cr.t
	t.Helper()
	waitFor(t, "the recorder to record both participants", 30*time.Second, func() bool { return len(cr.list()) == 2 })
	byRole := map[string]store.Recording{}
	for _, r := range cr.list() {
		byRole[r.ParticipantRole] = r
	}
	big, real = byRole["patient"], byRole["provider"]
	if big.ID == "" || real.ID == "" {
		t.Fatalf("recordings by role: %+v", byRole)
	}
	return big, real
}

// storedParts is the object key of the recording's first chunk and the
// number and total size of its parts in storage.
func (cr *crashRun) storedParts(rec string) (key string, n int, size int64) {
	ctx := context.Background()
	var upload string
	if err := cr.c.pool.QueryRow(ctx, `SELECT object_key, COALESCE(upload_id, '') FROM recording_chunks WHERE recording_id = $1 AND seq = 0`,
		rec).Scan(&key, &upload); err != nil || upload == "" {
		return key, 0, 0
	}
	core := &minio.Core{Client: cr.client}
	res, err := core.ListObjectParts(ctx, cr.bucket, key, upload, 0, 1000)
	if err != nil {
		return key, 0, 0
	}
	for _, p := range res.ObjectParts {
		size += p.Size
	}
	return key, len(res.ObjectParts), size
}

// killRecorderAfterFirstPart kills the recorder (SIGKILL) once the
// patient's first part is in storage, and returns when it was killed and
// how many bytes of the patient's chunk storage then held.
func (cr *crashRun) killRecorderAfterFirstPart(big store.Recording) (killed time.Time, stored int64) {
	t := cr.t
	t.Helper()
	waitFor(t, "the patient's first part in storage", 60*time.Second, func() bool { _, n, _ := cr.storedParts(big.ID); return n >= 1 })
	cr.rec1.signal(syscall.SIGKILL)
	killed = time.Now()
	if !cr.rec1.wait(10 * time.Second) {
		t.Fatal("the recorder did not die")
	}
	_, parts, stored := cr.storedParts(big.ID)
	t.Logf("recorder killed %v after the recording started; %d part(s), %d bytes of the patient's chunk in storage",
		killed.Sub(big.StartedAt).Round(100*time.Millisecond), parts, stored)
	return killed, stored
}

// recovered is the recording, its first chunk, and whether recovery has
// finished with them (the recording incomplete, the chunk no longer
// uploading).
func (cr *crashRun) recovered(id string) (store.Recording, store.Chunk, bool) {
	ctx := context.Background()
	r, err := store.RecordingByID(ctx, cr.c.pool, id)
	chunks, cerr := store.ChunksOf(ctx, cr.c.pool, id)
	if err != nil || cerr != nil || len(chunks) == 0 {
		return r, store.Chunk{}, false
	}
	return r, chunks[0], r.Status == store.RecIncomplete && chunks[0].Status != store.ChunkUploading
}

// checkRecovered checks one recovered recording: its chunk kept up to its
// last whole segment with its real duration, played through the audited
// API, decrypted by tink-go, and (for real media) played by Chromium.
func (cr *crashRun) checkRecovered(t *testing.T, admin *client, tc crashCase, killed time.Time) {
	t.Helper()
	r, ch, _ := cr.recovered(tc.rec.ID)
	if ch.Status != store.ChunkComplete || !ch.Truncated {
		t.Fatalf("chunk 0 is %s truncated=%v, want complete and truncated", ch.Status, ch.Truncated)
	}
	if ch.PlaintextSize < tc.atLeast {
		t.Errorf("kept %d plaintext bytes, want ≥ %d (the whole segments in storage at the crash)", ch.PlaintextSize, tc.atLeast)
	}
	url, played := cr.playChunk(t, admin, r, ch)
	in, err := recording.InspectWebMPrefix(bytes.NewReader(played))
	if err != nil {
		t.Fatal(err)
	}
	vt, _ := in.Track("V_VP8")
	at, _ := in.Track("A_OPUS")
	span := in.Span()
	t.Logf("kept %d bytes: %d video frames (%d key), %d audio frames over %v; chunk duration %d ms; ended %v",
		len(played), vt.Frames, vt.Keyframes, at.Frames, span, ch.DurationMS, r.EndedAt)
	if vt.Keyframes == 0 || at.Frames == 0 || span < time.Second {
		t.Errorf("too little media kept: %+v", in.Tracks)
	}
	// The real duration: what the kept media covers, not the heartbeat.
	if ch.DurationMS != span.Milliseconds() || ch.StartedAt.Add(span).After(killed.Add(time.Second)) {
		t.Errorf("duration %d ms, media spans %v, chunk started %v, killed %v", ch.DurationMS, span, ch.StartedAt, killed)
	}
	if r.EndedAt == nil || !r.EndedAt.Equal(ch.StartedAt.Add(span)) {
		t.Errorf("recording ended %v, want %v", r.EndedAt, ch.StartedAt.Add(span))
	}
	tinkVerify(t, cr.c, cr.client, cr.bucket, cr.keyring, r, ch, played)
	if tc.chromium {
		chromiumPlays(t, cr.c, admin, url, span)
	}
}

// playChunk plays the recording's first chunk through the API as admin,
// checks that the playback was whole and audited, and returns the chunk's
// media URL and what it served.
func (cr *crashRun) playChunk(t *testing.T, admin *client, r store.Recording, ch store.Chunk) (string, []byte) {
	t.Helper()
	var view signaling.RecordingView
	status, body := admin.do("GET", "/api/v1/recordings/"+r.ID, nil)
	if status != http.StatusOK || json.Unmarshal(body, &view) != nil || len(view.Chunks) == 0 || view.Chunks[0].MediaURL == "" {
		t.Fatalf("metadata: %d %s", status, body)
	}
	url := view.Chunks[0].MediaURL
	resp := admin.Do("GET", url, nil, nil)
	if resp.Status != http.StatusOK || resp.ReadErr != nil || int64(len(resp.Body)) != ch.PlaintextSize {
		t.Fatalf("playback: %d, %d bytes (want %d), %v", resp.Status, len(resp.Body), ch.PlaintextSize, resp.ReadErr)
	}
	var audited int
	_ = cr.c.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = 'recording.play' AND resource_id = $1 AND outcome = 'success'`, r.ID).Scan(&audited)
	if audited == 0 {
		t.Error("playback not audited")
	}
	return url, resp.Body
}

// stopAndCheckNoUploadOpen waits until recording goes on after the restart
// (once the dead recorder's claim on the visit has lapsed), stops it, and
// checks that nothing stays open.
func (cr *crashRun) stopAndCheckNoUploadOpen() {
	t := cr.t
	t.Helper()
	waitFor(t, "the restarted recorder to record again", 60*time.Second, func() bool { return len(cr.list()) >= 4 })
	if status, body := cr.prov.do("POST", cr.base+"/stop", struct{}{}); status != http.StatusOK {
		t.Fatalf("stop = %d %s", status, body)
	}
	waitFor(t, "every recording final", 90*time.Second, func() bool {
		recs := cr.list()
		for _, r := range recs {
			if r.Status != store.RecComplete && r.Status != store.RecIncomplete {
				return false
			}
		}
		return len(recs) >= 4
	})
	for u := range cr.client.ListIncompleteUploads(context.Background(), cr.bucket, "", true) {
		t.Errorf("multipart upload left open: %s (%v)", u.Key, u.Err)
	}
}

// clusterTLS makes one deployment certificate for every node (the recorder
// dials media nodes over verified TLS) and returns the environment that
// points a node at it.
func clusterTLS(t *testing.T, c *cluster) []string {
	t.Helper()
	certDir := filepath.Join(c.dir, "tls")
	if _, err := certs.SelfSigned(certDir, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	return []string{
		"OPENVISIT_TLS_CERT_FILE=" + filepath.Join(certDir, "selfsigned-cert.pem"),
		"OPENVISIT_TLS_KEY_FILE=" + filepath.Join(certDir, "selfsigned-key.pem"),
	}
}

// randomBucket is prefix with a random suffix: a bucket no other test uses.
func randomBucket(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// recordingsOf is the visit's recordings (none on an error: callers poll).
func recordingsOf(c *cluster, v ids.VisitID) []store.Recording {
	recs, _ := store.ListRecordings(context.Background(), c.pool, store.RecordingFilter{VisitID: v, Now: time.Now()})
	return recs
}

// tinkVerify decrypts the stored object with tink-go, independently of
// OpenVisit's reader: every segment tink authenticates before the cut must
// be what the API served.
func tinkVerify(t *testing.T, c *cluster, client *minio.Client, bucket, keyring string, r store.Recording, ch store.Chunk, served []byte) {
	t.Helper()
	ctx := context.Background()
	full, err := store.RecordingByID(ctx, c.pool, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := keys.OpenKeyringFile(keyring, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kf.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	dek, err := kr.Unwrap(full.KEKID, full.WrappedDEK, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := client.GetObject(ctx, bucket, ch.ObjectKey, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	sa, err := subtle.NewAESGCMHKDF(dek, "SHA256", 32, crashSegment, 0)
	if err != nil {
		t.Fatal(err)
	}
	dr, err := sa.NewDecryptingReader(obj, []byte(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, dr) // fails at the end: the object has no final segment
	if err == nil {
		t.Error("tink decrypted the whole object: it should lack its final segment")
	}
	got := out.Bytes()
	if len(got) < len(served)-crashSegment || !bytes.HasPrefix(served, got) {
		t.Errorf("tink authenticated %d bytes, the API served %d: they must agree up to tink's last segment", len(got), len(served))
	}
}

// chromiumPlays plays the chunk at url in Chromium (an admin session) to
// its end and checks that the media element reports no error.
func chromiumPlays(t *testing.T, c *cluster, admin *client, url string, span time.Duration) {
	t.Helper()
	b := e2e.NewBrowser(t, e2e.WithName("admin"))
	yes := true
	err := chromedp.Do(b.Context(), func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: signaling.SessionCookie, Value: admin.Cookie,
			URL: c.apiURL + "/", Path: "/", Secure: &yes, HTTPOnly: &yes, SameSite: network.CookieSameSiteLax})
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Navigate(t, c.apiURL+"/recordings")
	e2e.Eval[bool](t, b, fmt.Sprintf(`(() => { const v = document.createElement('video');
  v.muted = true; v.src = %q; document.body.append(v); window.__v = v;
  v.addEventListener('canplay', () => { v.playbackRate = 4; v.play().catch((e) => { window.__err = String(e); }); }, { once: true });
  return true; })()`, url))
	ctx := context.Background()
	if err := b.Poll(ctx, `window.__v.ended || !!window.__v.error || !!window.__err`, 60*time.Second); err != nil {
		t.Fatalf("Chromium did not reach the end: %v", err)
	}
	type state struct {
		Ended bool    `json:"ended"`
		Err   int     `json:"err"`
		Time  float64 `json:"t"`
		Width int     `json:"w"`
	}
	st := e2e.Eval[state](t, b, `({ ended: window.__v.ended, err: window.__v.error ? window.__v.error.code : 0, t: window.__v.currentTime, w: window.__v.videoWidth })`)
	t.Logf("Chromium: ended %v at %.2f s, video %d px wide, media error %d", st.Ended, st.Time, st.Width, st.Err)
	if !st.Ended || st.Err != 0 || st.Width == 0 || st.Time < span.Seconds()-1 {
		t.Errorf("Chromium playback of the recovered chunk: %+v, want it to play to ≈%.1f s without error", st, span.Seconds())
	}
}
