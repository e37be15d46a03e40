package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/recording"
	"github.com/openvisit/openvisit/signaling"
)

// ebmlMagic starts every WebM (EBML) file.
var ebmlMagic = []byte{0x1a, 0x45, 0xdf, 0xa3}

// waitRecordings waits until visit has n recordings and all are final.
func waitRecordings(t *testing.T, pool *pgxpool.Pool, visit ids.VisitID, n int, timeout time.Duration) []store.Recording {
	t.Helper()
	var recs []store.Recording
	waitFor(t, fmt.Sprintf("%d final recordings", n), timeout, func() bool {
		var err error
		recs, err = store.ListRecordings(context.Background(), pool, store.RecordingFilter{VisitID: visit, Now: time.Now()})
		return err == nil && FinalRecordings(recs, n)
	})
	return recs
}

// assertCiphertextOnly checks every chunk object in storage is not WebM.
func assertCiphertextOnly(t *testing.T, srv *Server, pool *pgxpool.Pool, rec string) {
	t.Helper()
	chunks, err := store.ChunksOf(context.Background(), pool, rec)
	if err != nil || len(chunks) == 0 {
		t.Fatalf("chunks of %s: %v (%d)", rec, err, len(chunks))
	}
	for _, c := range chunks {
		obj, err := srv.App.RecordingLibrary().Objects.Get(context.Background(), c.ObjectKey)
		if err != nil {
			t.Fatalf("get object: %v", err)
		}
		if int64(len(obj)) != c.Size {
			t.Errorf("object is %d bytes, the row says %d", len(obj), c.Size)
		}
		if bytes.HasPrefix(obj, ebmlMagic) || bytes.Contains(obj, []byte("webm")) || bytes.Contains(obj, []byte("OpusHead")) {
			t.Errorf("object %s holds plaintext WebM", c.ObjectKey)
		}
		if obj[0] != 40 {
			t.Errorf("object %s does not start with a streaming AEAD header", c.ObjectKey)
		}
	}
}

// framesSent is the most video frames any of the page's outbound streams
// (simulcast layers) has sent.
func framesSent(t *testing.T, b *Browser) int {
	t.Helper()
	return Eval[int](t, b, `(async () => {
  const c = window.openvisit && window.openvisit.client;
  let n = 0;
  if (c) (await c.getStats()).forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') n = Math.max(n, s.framesSent || 0); });
  return n;
})()`)
}

// TestE2ERecordingRoundTrip: two browsers in the demo visit; the provider
// asks to record, the patient consents, 10 s are recorded, the provider
// stops; storage holds only ciphertext; an admin retrieves each
// participant's WebM through the API (whole and by Range), its video and
// audio frames parse and span the recorded time, and the access is audited.
func TestE2ERecordingRoundTrip(t *testing.T) {
	s3 := testenv.MinIO(t)
	srv := recordingServer(t, s3, nil)
	pool := recPool(t, srv)
	provider, patient := joinDemoCall(t, srv)
	rc := newRoundTripClients(t, srv, pool)

	recorded := rc.recordTenSeconds(t, provider, patient)
	recs := waitRecordings(t, pool, rc.visit, 2, 60*time.Second)
	for _, r := range recs {
		if r.Status != store.RecComplete {
			t.Errorf("recording %s is %s, want complete", r.ID, r.Status)
		}
		assertCiphertextOnly(t, srv, pool, r.ID)
	}

	// Retrieval through the API as an admin.
	var list struct{ Recordings []store.Recording }
	decodeJSON(t, rc.admin.must("GET", "/api/v1/recordings?visit_id="+string(rc.visit), nil, 200).Body, &list)
	if len(list.Recordings) != 2 {
		t.Fatalf("listed %d recordings, want 2", len(list.Recordings))
	}
	seen := map[ids.ParticipantID]bool{}
	for _, r := range list.Recordings {
		seen[r.ParticipantID] = true
		rc.checkRetrieval(t, r, recorded)
	}
	if !seen[rc.parts["patient"]] || !seen[rc.parts["provider"]] {
		t.Errorf("recorded participants %v, want both of %v", seen, rc.parts)
	}
	// The patient cannot retrieve recordings.
	rc.pat.must("GET", "/api/v1/recordings/"+list.Recordings[0].ID, nil, 404)
}

// joinDemoCall opens the demo visit's two links in two browsers and waits
// until each receives the other's media.
func joinDemoCall(t *testing.T, srv *Server) (provider, patient *Browser) {
	t.Helper()
	ctx := t.Context()
	links := srv.DemoLinks(t)
	provider = NewBrowser(t, WithName("provider"))
	patient = NewBrowser(t, WithName("patient"))
	provider.Navigate(t, links[0])
	patient.Navigate(t, links[1])
	for _, b := range []*Browser{provider, patient} {
		b.WaitFor(t, ctx, `document.body.dataset.state === 'connected'`, callTimeout)
	}
	self := map[*Browser]string{provider: Eval[string](t, provider, `window.openvisit.self`), patient: Eval[string](t, patient, `window.openvisit.self`)}
	provider.WaitFor(t, ctx, mediaFrom(self[patient]), callTimeout)
	patient.WaitFor(t, ctx, mediaFrom(self[provider]), callTimeout)
	return provider, patient
}

// roundTripClients are the API clients of the round trip: the demo visit's
// provider and patient, and an admin.
type roundTripClients struct {
	pool    *pgxpool.Pool
	visit   ids.VisitID
	parts   map[string]ids.ParticipantID
	prov    *apiClient
	pat     *apiClient
	admin   *apiClient
	adminID ids.UserID
	base    string // the visit's recording API
}

// newRoundTripClients: demo visits have no accounts, so the test gives the
// visit a provider account (as scheduling does) and the demo patient a
// patient session (as an invite does), and drives consent through the API
// with them.
func newRoundTripClients(t *testing.T, srv *Server, pool *pgxpool.Pool) *roundTripClients {
	t.Helper()
	visit, parts := demoVisit(t, pool)
	prov, provID := staffClient(t, srv, pool, "provider")
	if _, err := pool.Exec(t.Context(), `UPDATE visits SET provider_id = $1 WHERE id = $2`, string(provID), string(visit)); err != nil {
		t.Fatal(err)
	}
	pat := newAPIClient(t, srv, pool, store.NewSession{Kind: store.SessionPatient, VisitID: visit, ParticipantID: parts["patient"]})
	admin, adminID := staffClient(t, srv, pool, "admin")
	return &roundTripClients{pool: pool, visit: visit, parts: parts, prov: prov, pat: pat, admin: admin, adminID: adminID,
		base: "/api/v1/visits/" + string(visit) + "/recording"}
}

// recordTenSeconds asks for consent, which the patient gives, starts
// recording, records at least 10 s and 130 frames from each camera, and
// stops; it returns how long it recorded.
func (rc *roundTripClients) recordTenSeconds(t *testing.T, provider, patient *Browser) time.Duration {
	t.Helper()
	ctx, base := t.Context(), rc.base
	rc.prov.must("POST", base+"/start", struct{}{}, 409) // no consent yet
	rc.prov.must("POST", base+"/request", struct{}{}, 200)
	var st signaling.RecordingState
	decodeJSON(t, rc.pat.must("GET", base, nil, 200).Body, &st)
	if !st.Requested || st.Consent != "none" || st.Recording {
		t.Fatalf("state after request: %+v", st)
	}
	rc.pat.must("POST", base+"/consent", map[string]bool{"accept": true}, 200)
	decodeJSON(t, rc.prov.must("POST", base+"/start", struct{}{}, 200).Body, &st)
	if !st.Recording || st.Consent != "given" {
		t.Fatalf("state after start: %+v", st)
	}
	started := time.Now()
	sentAtStart := map[*Browser]int{provider: framesSent(t, provider), patient: framesSent(t, patient)}
	waitFor(t, "the recorder to record both participants", 20*time.Second, func() bool {
		recs, _ := store.ListRecordings(ctx, rc.pool, store.RecordingFilter{VisitID: rc.visit, Now: time.Now()})
		return len(recs) == 2
	})
	// At least 10 s, and until each camera has sent 130 frames since the
	// start: a busy machine's fake camera makes fewer frames a second.
	waitFor(t, "10 s and 130 frames from each camera", 2*time.Minute, func() bool {
		return time.Since(started) >= 10*time.Second &&
			framesSent(t, provider)-sentAtStart[provider] >= 130 && framesSent(t, patient)-sentAtStart[patient] >= 130
	})
	rc.prov.must("POST", base+"/stop", struct{}{}, 200)
	recorded := time.Since(started)
	t.Logf("recorded for %v", recorded.Round(time.Millisecond))
	return recorded
}

// checkRetrieval retrieves a recording as the admin: its one chunk is WebM
// whose frames span the recorded time, the playback is audited, and a
// Range slice and the download form (audited) match the whole.
func (rc *roundTripClients) checkRetrieval(t *testing.T, r store.Recording, recorded time.Duration) {
	t.Helper()
	admin, adminID, pool := rc.admin, string(rc.adminID), rc.pool
	var view signaling.RecordingView
	decodeJSON(t, admin.must("GET", "/api/v1/recordings/"+r.ID, nil, 200).Body, &view)
	if len(view.Chunks) != 1 || view.Chunks[0].MediaURL == "" {
		t.Fatalf("recording %s: chunks %+v", r.ID, view.Chunks)
	}
	url := view.Chunks[0].MediaURL
	before := countAudit(t, pool, "recording.play", adminID, r.ID)
	whole := admin.must("GET", url, nil, 200)
	if whole.Header.Get("Content-Type") != "video/webm" || !bytes.HasPrefix(whole.Body, ebmlMagic) {
		t.Fatalf("media is not WebM: %q", whole.Header.Get("Content-Type"))
	}
	if n := countAudit(t, pool, "recording.play", adminID, r.ID); n != before+1 {
		t.Errorf("%d audit entries for the playback, want %d", n, before+1)
	}
	in, err := recording.InspectWebM(bytes.NewReader(whole.Body))
	if err != nil {
		t.Fatalf("recording %s: %v", r.ID, err)
	}
	v, _ := in.Track("V_VP8")
	a, _ := in.Track("A_OPUS")
	span := time.Duration(max(v.LastMS, a.LastMS)-min(v.FirstMS, a.FirstMS)) * time.Millisecond
	t.Logf("participant %s (%s): %d video frames (%d key), %d audio frames, %v", r.ParticipantID, r.ParticipantRole, v.Frames, v.Keyframes, a.Frames, span)
	if v.Frames < 100 || v.Keyframes == 0 || a.Frames < 200 {
		t.Errorf("recording %s: too few frames: video %d (key %d), audio %d", r.ID, v.Frames, v.Keyframes, a.Frames)
	}
	if d := span - recorded; d < -2*time.Second || d > 2*time.Second {
		t.Errorf("recording %s spans %v, the call was recorded for %v (±2 s)", r.ID, span, recorded)
	}

	// Range: a slice from the middle, and the download form.
	mid := len(whole.Body) / 2
	rg := admin.do("GET", url, nil, map[string]string{"Range": "bytes=" + strconv.Itoa(mid) + "-" + strconv.Itoa(mid+99999)})
	if rg.Status != 206 || !bytes.Equal(rg.Body, whole.Body[mid:min(mid+100000, len(whole.Body))]) {
		t.Errorf("range request: %d, %d bytes", rg.Status, len(rg.Body))
	}
	dl := admin.do("GET", url+"?download=1", nil, nil)
	if dl.Status != 200 || dl.Header.Get("Content-Disposition") == "" || !bytes.Equal(dl.Body, whole.Body) {
		t.Errorf("download: %d %q", dl.Status, dl.Header.Get("Content-Disposition"))
	}
	if countAudit(t, pool, "recording.download", adminID, r.ID) != 1 {
		t.Error("the download is not audited")
	}
}

func countAudit(t *testing.T, pool *pgxpool.Pool, action, actor, resource string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = $1 AND actor_id = $2
		AND resource_id = $3 AND outcome = 'success'`, action, actor, resource).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// recordWithPublisher records a Pion publisher in the demo visit for d
// (switching recording on in the database, as start does after consent).
func recordWithPublisher(t *testing.T, srv *Server, pool *pgxpool.Pool, frameSize int, during func(elapsed time.Duration)) (store.Recording, *Peer) {
	return recordNth(t, srv, pool, 1, frameSize, during)
}

// recordNth is recordWithPublisher with demo link n; it is the visit's
// n-th recording (n = 1 or 2: the demo has two one-time links).
func recordNth(t *testing.T, srv *Server, pool *pgxpool.Pool, n, frameSize int, during func(elapsed time.Duration)) (store.Recording, *Peer) {
	t.Helper()
	pub := newPublisher(t, srv, srv.DemoLinks(t)[2-n], frameSize)
	_, rec := recordDemo(t, srv, pool, pub, n, func() { during(0) })
	return rec, pub
}

// recordDemo records pub in the demo visit: it starts the visit's n-th
// recording, waits for it to start, runs during, stops it, closes pub and
// returns the visit and the recording once final.
func recordDemo(t *testing.T, srv *Server, pool *pgxpool.Pool, pub *Peer, n int, during func()) (ids.VisitID, store.Recording) {
	t.Helper()
	ctx := t.Context()
	visit, _ := demoVisit(t, pool)
	if _, err := store.StartRecording(ctx, pool, visit, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.App.Recorder().SyncNow()
	waitFor(t, "the recording to start", 20*time.Second, func() bool {
		recs, _ := store.ListRecordings(ctx, pool, store.RecordingFilter{VisitID: visit, Now: time.Now()})
		return len(recs) == n
	})
	during()
	if _, err := store.StopRecording(ctx, pool, visit, "stopped", time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.App.Recorder().SyncNow()
	pub.Close()
	return visit, waitRecordings(t, pool, visit, n, 90*time.Second)[0] // newest first
}

// TestRecordingSurvivesStorageOutage stops object storage mid-recording
// and starts it again: parts wait in the local spool (ciphertext only) and
// are retried; the recording completes and decrypts in full.
func TestRecordingSurvivesStorageOutage(t *testing.T) {
	minio := startOwnMinIO(t)
	srv := recordingServer(t, minio.s3(), nil)
	pool := recPool(t, srv)
	var spoolPeak int64
	var framesAtStart, framesAtStop int64
	rec, pub := recordWithPublisher(t, srv, pool, 40000, func(time.Duration) {
		framesAtStart = 0
		time.Sleep(4 * time.Second)
		minio.stop()
		t.Log("storage stopped")
		deadline := time.Now().Add(8 * time.Second)
		for time.Now().Before(deadline) {
			spoolPeak = max(spoolPeak, srv.App.Recorder().Stats().SpoolBytes)
			time.Sleep(100 * time.Millisecond)
		}
		minio.start()
		t.Log("storage restarted")
		time.Sleep(4 * time.Second)
	})
	framesAtStop = pub.Frames()
	_ = framesAtStart
	st := srv.App.Recorder().Stats()
	t.Logf("spool peak %d bytes, parts uploaded %d, upload retries %d, dropped packets %d", spoolPeak, st.PartsUploaded, st.UploadRetries, st.DroppedPackets)
	if spoolPeak == 0 {
		t.Error("nothing was spooled during the outage")
	}
	if rec.Status != store.RecComplete {
		t.Fatalf("recording is %s after the outage, want complete", rec.Status)
	}
	assertCiphertextOnly(t, srv, pool, rec.ID)
	chunks, _ := store.ChunksOf(t.Context(), pool, rec.ID)
	var video, audio int
	var spanMS int64
	for _, c := range chunks {
		pb, err := srv.App.RecordingLibrary().Open(t.Context(), rec, c)
		if err != nil {
			t.Fatalf("open chunk %d: %v", c.Seq, err)
		}
		in, err := recording.InspectWebM(pb)
		pb.Close()
		if err != nil {
			t.Fatalf("chunk %d: %v", c.Seq, err)
		}
		v, _ := in.Track("V_VP8")
		a, _ := in.Track("A_OPUS")
		video += v.Frames
		audio += a.Frames
		spanMS += max(v.LastMS, a.LastMS) - min(v.FirstMS, a.FirstMS)
	}
	// ≈16 s at 30 fps were recorded: all of it must be there.
	t.Logf("decrypted %d chunk(s): %d video, %d audio frames over %d ms (publisher sent %d frames in all)", len(chunks), video, audio, spanMS, framesAtStop)
	if spanMS < 14000 || video < 14*30 || audio < 14*30 {
		t.Errorf("the recording is not complete: %d ms, %d video, %d audio frames", spanMS, video, audio)
	}
}

// TestRecordingAccessFailsClosed: when the audit log cannot be written,
// retrieval sends no byte of a recording.
func TestRecordingAccessFailsClosed(t *testing.T) {
	s3 := testenv.MinIO(t)
	srv := recordingServer(t, s3, nil)
	pool := recPool(t, srv)
	rec, _ := recordWithPublisher(t, srv, pool, 3000, func(time.Duration) { time.Sleep(3 * time.Second) })
	admin, _ := staffClient(t, srv, pool, "admin")
	url := "/api/v1/recordings/" + rec.ID + "/chunks/0"
	if r := admin.do("GET", url, nil, map[string]string{"Range": "bytes=0-1023"}); r.Status != 206 || !bytes.HasPrefix(r.Body, ebmlMagic) {
		t.Fatalf("before the fault: %d", r.Status)
	}

	// Make every audit insert fail (the test connects as the owner).
	ctx := t.Context()
	for _, q := range []string{
		`CREATE FUNCTION test_audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit storage down'; END; $$`,
		`CREATE TRIGGER test_audit_down BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION test_audit_down()`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
	}{
		{"play", url, nil},
		{"range", url, map[string]string{"Range": "bytes=100-200"}},
		{"download", url + "?download=1", nil},
	} {
		r := admin.do("GET", tc.path, nil, tc.hdr)
		if r.Status != 503 || len(r.Body) != 0 || r.Header.Get("X-Error-Code") != "audit_unavailable" {
			t.Errorf("%s with the audit log down: %d, %d body bytes, code %q; want 503, no body", tc.name, r.Status, len(r.Body), r.Header.Get("X-Error-Code"))
		}
	}
	if r := admin.do("GET", "/api/v1/recordings/"+rec.ID, nil, nil); r.Status != 503 || bytes.Contains(r.Body, []byte(rec.ID)) {
		t.Errorf("metadata with the audit log down: %d %s", r.Status, r.Body)
	}
	if r := admin.do("GET", "/api/v1/recordings", nil, nil); r.Status != 503 {
		t.Errorf("list with the audit log down: %d", r.Status)
	}

	if _, err := pool.Exec(ctx, `DROP TRIGGER test_audit_down ON audit_events`); err != nil {
		t.Fatal(err)
	}
	if r := admin.do("GET", url, nil, map[string]string{"Range": "bytes=0-1023"}); r.Status != 206 {
		t.Errorf("after the audit log is back: %d", r.Status)
	}
}

// TestKeyRotationRewrap: a recording made under KEK 1; rotate; a second
// recording under KEK 2; retiring KEK 1 is refused while the first
// recording needs it; rewrap moves every data key to KEK 2 without touching
// media; both recordings still decrypt; then KEK 1 can be retired.
func TestKeyRotationRewrap(t *testing.T) {
	s3 := testenv.MinIO(t)
	srv := recordingServer(t, s3, nil)
	pool := recPool(t, srv)
	ctx := t.Context()
	lib := srv.App.RecordingLibrary()
	kr, _ := lib.Keys.Keyring()
	kek1 := kr.Primary()

	first, _ := recordNth(t, srv, pool, 1, 3000, func(time.Duration) { time.Sleep(3 * time.Second) })
	kek2, err := recording.RotateKEK(ctx, pool, lib.Keys, "test", time.Now())
	if err != nil || kek2 == kek1 {
		t.Fatalf("rotate: %v", err)
	}
	second, _ := recordNth(t, srv, pool, 2, 3000, func(time.Duration) { time.Sleep(3 * time.Second) })
	keyOf := func(id string) store.Recording {
		r, err := store.RecordingByID(ctx, pool, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if k := keyOf(first.ID).KEKID; k != kek1 {
		t.Fatalf("first recording under %s, want %s", k, kek1)
	}
	if k := keyOf(second.ID).KEKID; k != kek2 {
		t.Fatalf("second recording under %s, want %s", k, kek2)
	}
	objectsBefore := map[string]int64{}
	for _, id := range []string{first.ID, second.ID} {
		cs, _ := store.ChunksOf(ctx, pool, id)
		for _, c := range cs {
			objectsBefore[c.ObjectKey] = c.Size
		}
	}

	if err := recording.RetireKEK(ctx, pool, lib.Keys, kek1, "test", time.Now()); !errors.Is(err, recording.ErrKEKInUse) {
		t.Fatalf("retiring a KEK in use: %v, want ErrKEKInUse", err)
	}
	if n := auditOutcome(t, pool, recording.ActionKEKRetire, kek1, "denied"); n != 1 {
		t.Errorf("%d denied retire audit entries, want 1", n)
	}
	n, err := recording.Rewrap(ctx, pool, lib.Keys, "test")
	if err != nil || n != 1 {
		t.Fatalf("rewrap: %d, %v (want 1 key moved)", n, err)
	}
	for _, id := range []string{first.ID, second.ID} {
		r := keyOf(id)
		if r.KEKID != kek2 {
			t.Errorf("recording %s under %s after rewrap", id, r.KEKID)
		}
		cs, _ := store.ChunksOf(ctx, pool, id)
		for _, c := range cs {
			if objectsBefore[c.ObjectKey] != c.Size {
				t.Errorf("chunk object changed by rewrap")
			}
			pb, err := lib.Open(ctx, r, c)
			if err != nil {
				t.Fatalf("open %s after rewrap: %v", id, err)
			}
			in, err := recording.InspectWebM(pb)
			pb.Close()
			if a, _ := in.Track("A_OPUS"); err != nil || a.Frames == 0 {
				t.Errorf("recording %s after rewrap: %v, %d audio frames", id, err, a.Frames)
			}
		}
	}
	if err := recording.RetireKEK(ctx, pool, lib.Keys, kek1, "test", time.Now()); err != nil {
		t.Fatalf("retire an unused KEK: %v", err)
	}
	if err := recording.RetireKEK(ctx, pool, lib.Keys, kek2, "test", time.Now()); err == nil {
		t.Error("retired the primary KEK")
	}
	if n := auditOutcome(t, pool, recording.ActionKEKRewrap, kek2, "success"); n != 1 {
		t.Errorf("%d rewrap audit entries, want 1", n)
	}
}

func auditOutcome(t *testing.T, pool *pgxpool.Pool, action, resource, outcome string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = $1 AND resource_id = $2 AND outcome = $3`,
		action, resource, outcome).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
