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
	s3 := testenv.MinIO(t)
	c := newCluster(t)
	certDir := filepath.Join(c.dir, "tls")
	if _, err := certs.SelfSigned(certDir, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := "ov-rec-crash-" + hex.EncodeToString(b[:])
	keyring := filepath.Join(c.dir, "recording-keyring.json")
	common := append([]string{
		"OPENVISIT_TLS_CERT_FILE=" + filepath.Join(certDir, "selfsigned-cert.pem"),
		"OPENVISIT_TLS_KEY_FILE=" + filepath.Join(certDir, "selfsigned-key.pem"),
		"OPENVISIT_RECORDING_KEYRING_FILE=" + keyring,
		"OPENVISIT_RECORDING_PART_SIZE=5242880",
		fmt.Sprintf("OPENVISIT_RECORDING_SEGMENT_SIZE=%d", crashSegment),
	}, s3.Env(bucket)...)
	recorder := append(append([]string{}, common...), "OPENVISIT_TOKEN_SIGNING_KEY_FILE="+c.signKey)
	c.start("api", "api,media", common...)
	c.waitLive("api")
	rec1 := c.start("rec", "recorder", recorder...)

	// A provider publishing real VP8/Opus (for Chromium) and a patient
	// publishing large synthetic frames (≈1.2 MB/s: parts fill in seconds).
	prov, _ := c.provider()
	v := prov.newVisit()
	pat := c.patient(v)
	clip := e2e.LoadClip(t, "../loadtest/testdata")
	pp := peer{e2e.JoinPeer(t, prov.join(v), e2e.PeerOptions{Clip: clip})}
	bp := peer{e2e.JoinPeer(t, pat.join(v), e2e.PeerOptions{FrameSize: 40000})}
	pp.receiving(t, "provider receiving media", 30*time.Second)
	bp.receiving(t, "patient receiving media", 30*time.Second)
	base := "/api/v1/visits/" + string(v) + "/recording"
	for _, step := range []struct {
		cl   *client
		path string
		body any
	}{{prov, "/request", struct{}{}}, {pat, "/consent", map[string]bool{"accept": true}}, {prov, "/start", struct{}{}}} {
		if status, body := step.cl.do("POST", base+step.path, step.body); status != http.StatusOK {
			t.Fatalf("POST %s = %d %s", step.path, status, body)
		}
	}
	ctx := context.Background()
	list := func() []store.Recording {
		recs, _ := store.ListRecordings(ctx, c.pool, store.RecordingFilter{VisitID: v, Now: time.Now()})
		return recs
	}
	waitFor(t, "the recorder to record both participants", 30*time.Second, func() bool { return len(list()) == 2 })
	byRole := map[string]store.Recording{}
	for _, r := range list() {
		byRole[r.ParticipantRole] = r
	}
	big, real := byRole["patient"], byRole["provider"]
	if big.ID == "" || real.ID == "" {
		t.Fatalf("recordings by role: %+v", byRole)
	}

	// Kill the recorder once the patient's first part is in storage.
	client, err := objstore.New(s3.Config(""))
	if err != nil {
		t.Fatal(err)
	}
	core := &minio.Core{Client: client}
	storedParts := func(rec string) (key string, n int, size int64) {
		var upload string
		if err := c.pool.QueryRow(ctx, `SELECT object_key, COALESCE(upload_id, '') FROM recording_chunks WHERE recording_id = $1 AND seq = 0`,
			rec).Scan(&key, &upload); err != nil || upload == "" {
			return key, 0, 0
		}
		res, err := core.ListObjectParts(ctx, bucket, key, upload, 0, 1000)
		if err != nil {
			return key, 0, 0
		}
		for _, p := range res.ObjectParts {
			size += p.Size
		}
		return key, len(res.ObjectParts), size
	}
	waitFor(t, "the patient's first part in storage", 60*time.Second, func() bool { _, n, _ := storedParts(big.ID); return n >= 1 })
	rec1.signal(syscall.SIGKILL)
	killed := time.Now()
	if !rec1.wait(10 * time.Second) {
		t.Fatal("the recorder did not die")
	}
	_, parts, stored := storedParts(big.ID)
	t.Logf("recorder killed %v after the recording started; %d part(s), %d bytes of the patient's chunk in storage",
		killed.Sub(big.StartedAt).Round(100*time.Millisecond), parts, stored)

	// Restart: the recorder recovers what the killed process left.
	c.start("rec", "recorder", recorder...)
	recovered := func(id string) (store.Recording, store.Chunk, bool) {
		r, err := store.RecordingByID(ctx, c.pool, id)
		chunks, cerr := store.ChunksOf(ctx, c.pool, id)
		if err != nil || cerr != nil || len(chunks) == 0 {
			return r, store.Chunk{}, false
		}
		return r, chunks[0], r.Status == store.RecIncomplete && chunks[0].Status != store.ChunkUploading
	}
	for _, id := range []string{big.ID, real.ID} {
		waitFor(t, "recovery of "+id, 60*time.Second, func() bool { _, _, ok := recovered(id); return ok })
	}

	u, err := store.CreateUser(ctx, c.pool, "admin-"+hex.EncodeToString(b[:])+"@clinic.test", "Admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	admin := c.session(store.NewSession{Kind: store.SessionStaff, UserID: u.ID})
	params := streamaead.Params{SegmentSize: crashSegment}
	for _, tc := range []struct {
		name     string
		rec      store.Recording
		atLeast  int64 // plaintext bytes that must have been kept
		chromium bool
	}{
		{"patient (first part from storage)", big, streamaead.PrefixPlaintextSize(uint64(stored/crashSegment), params), false},
		{"provider (from the spool)", real, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ch, _ := recovered(tc.rec.ID)
			if ch.Status != store.ChunkComplete || !ch.Truncated {
				t.Fatalf("chunk 0 is %s truncated=%v, want complete and truncated", ch.Status, ch.Truncated)
			}
			if ch.PlaintextSize < tc.atLeast {
				t.Errorf("kept %d plaintext bytes, want ≥ %d (the whole segments in storage at the crash)", ch.PlaintextSize, tc.atLeast)
			}
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
			_ = c.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'recording.play' AND resource_id = $1 AND outcome = 'success'`, r.ID).Scan(&audited)
			if audited == 0 {
				t.Error("playback not audited")
			}
			in, err := recording.InspectWebMPrefix(bytes.NewReader(resp.Body))
			if err != nil {
				t.Fatal(err)
			}
			vt, _ := in.Track("V_VP8")
			at, _ := in.Track("A_OPUS")
			span := in.Span()
			t.Logf("kept %d bytes: %d video frames (%d key), %d audio frames over %v; chunk duration %d ms; ended %v",
				len(resp.Body), vt.Frames, vt.Keyframes, at.Frames, span, ch.DurationMS, r.EndedAt)
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
			tinkVerify(t, c, client, bucket, keyring, r, ch, resp.Body)
			if tc.chromium {
				chromiumPlays(t, c, admin, url, span)
			}
		})
	}

	// Recording goes on after the restart (once the dead recorder's claim
	// on the visit has lapsed); stop it, and nothing stays open.
	waitFor(t, "the restarted recorder to record again", 60*time.Second, func() bool { return len(list()) >= 4 })
	if status, body := prov.do("POST", base+"/stop", struct{}{}); status != http.StatusOK {
		t.Fatalf("stop = %d %s", status, body)
	}
	waitFor(t, "every recording final", 90*time.Second, func() bool {
		recs := list()
		for _, r := range recs {
			if r.Status != store.RecComplete && r.Status != store.RecIncomplete {
				return false
			}
		}
		return len(recs) >= 4
	})
	for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		t.Errorf("multipart upload left open: %s (%v)", u.Key, u.Err)
	}
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
