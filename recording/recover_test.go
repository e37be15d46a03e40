package recording

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/recording/streamaead"
)

// recoverEnv is a database, a bucket, a keyring and a spool, with the
// recovery of recorder node "rec-a".
type recoverEnv struct {
	t     *testing.T
	pool  *pgxpool.Pool
	objs  *Objects
	kf    *keys.KeyringFile
	spool *Spool
	rc    *recovery
	visit ids.VisitID
}

const testSeg = 100_000 // does not divide a 5 MiB part: parts end mid-segment

func newRecoverEnv(t *testing.T) *recoverEnv {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t, 4)
	m := testenv.MinIO(t)
	objs, err := NewObjects(m.Config("ov-test-recover-" + uuid.NewString()[:8]))
	if err != nil {
		t.Fatal(err)
	}
	if err := objs.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	kf, err := keys.OpenKeyringFile(t.TempDir()+"/keyring.json", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	spool, err := NewSpool(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	e := &recoverEnv{t: t, pool: pool, objs: objs, kf: kf, spool: spool, visit: ids.NewVisitID()}
	if err := store.CreateVisit(ctx, pool, e.visit, "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	e.rc = &recovery{pool: pool, objs: objs, keys: kf, spool: spool, node: "rec-a",
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	return e
}

// crashed is a chunk its recorder never finished: what it wrote (ct, a
// complete object's ciphertext, of which the recorder got some way) and
// its plaintext.
type crashed struct {
	rec       store.Recording
	chunk     store.Chunk
	ct, pt    []byte
	uploadID  string
	startedAt time.Time
}

// newCrashed records d of synthetic media as recorder node, leaves its
// recording 'recording' and its chunk 'uploading' with an open multipart
// upload, as a killed recorder does; the caller stores parts.
func (e *recoverEnv) newCrashed(node string, d time.Duration) *crashed {
	t := e.t
	t.Helper()
	ctx := context.Background()
	c := e.newRecording(node, d)
	key, _ := newObjectKey()
	c.chunk = store.Chunk{RecordingID: c.rec.ID, Seq: 0, ObjectKey: key, Header: c.ct[:streamaead.HeaderSize], StartedAt: c.startedAt}
	if err := store.AddChunk(ctx, e.pool, c.chunk); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.uploadID, err = e.objs.newUpload(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := store.SetChunkUpload(ctx, e.pool, c.rec.ID, 0, c.uploadID); err != nil {
		t.Fatal(err)
	}
	return c
}

// newRecording records d of synthetic media as recorder node into one
// chunk's ciphertext (ct), leaving the recording 'recording'; no chunk row.
func (e *recoverEnv) newRecording(node string, d time.Duration) *crashed {
	t := e.t
	t.Helper()
	ctx := context.Background()
	kr, err := e.kf.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	kek, wrapped, err := kr.Wrap(dek, id)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-d).Truncate(time.Millisecond)
	if err := store.CreateRecording(ctx, e.pool, store.NewRecording{ID: id, VisitID: e.visit, ParticipantID: ids.NewParticipantID(),
		KEKID: kek, WrappedDEK: wrapped, SegmentSize: testSeg, StartedAt: started, DeleteAfter: started.Add(time.Hour), RecorderNode: node}); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: started}
	sink := &memSink{}
	m, err := NewMuxer(MuxParams{RecordingID: id, DataKey: dek, SegmentSize: testSeg, ChunkDuration: time.Hour,
		NewChunk: func(int, time.Time) (ChunkSink, func(), error) { return sink, nil, nil }, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range newStream().packets(d) {
		clk.t = started.Add(p.at)
		m.Push(p.video, p.pkt)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	c := &crashed{ct: sink.Bytes(), startedAt: started}
	r, err := streamaead.NewReader(bytes.NewReader(c.ct), dek, []byte(id), streamaead.Params{SegmentSize: testSeg})
	if err != nil {
		t.Fatal(err)
	}
	if c.pt, err = io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
	if c.rec, err = store.RecordingByID(ctx, e.pool, id); err != nil {
		t.Fatal(err)
	}
	return c
}

// upload stores ct[from:to] as part n of c's upload.
func (e *recoverEnv) upload(c *crashed, n, from, to int) {
	e.t.Helper()
	if _, err := e.objs.putPart(context.Background(), c.chunk.ObjectKey, c.uploadID, n, c.ct[from:to]); err != nil {
		e.t.Fatal(err)
	}
}

// spoolPart leaves ct[from:to] in the spool as part n, as the crashed
// recorder's disk holds it.
func (e *recoverEnv) spoolPart(c *crashed, n, from, to int) string {
	e.t.Helper()
	p := e.spool.partPath(c.chunk.RecordingID, 0, n)
	if err := os.WriteFile(p, c.ct[from:to], 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// after returns the recovered recording and chunk.
func (e *recoverEnv) after(c *crashed) (store.Recording, store.Chunk) {
	e.t.Helper()
	ctx := context.Background()
	rec, err := store.RecordingByID(ctx, e.pool, c.rec.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	chunks, err := store.ChunksOf(ctx, e.pool, c.rec.ID)
	if err != nil || len(chunks) != 1 {
		e.t.Fatalf("chunks: %v %d", err, len(chunks))
	}
	return rec, chunks[0]
}

// play reads a chunk through Library.Open, as the playback API does.
func (e *recoverEnv) play(rec store.Recording, ch store.Chunk) ([]byte, error) {
	pb, err := (&Library{Objects: e.objs, Keys: e.kf}).Open(context.Background(), rec, ch)
	if err != nil {
		return nil, err
	}
	defer pb.Close()
	return io.ReadAll(pb)
}

// TestRecoveryKeepsStoredParts: recovery of chunks left by a recorder that
// stopped mid-chunk. What reached storage (and this host's spool) is kept
// and plays up to its last whole segment; the recording is incomplete with
// the duration of what was kept; no multipart upload stays open; a chunk
// that stored nothing is lost; a recording still being recorded elsewhere
// is not touched; an upload no chunk names is aborted.
func TestRecoveryKeepsStoredParts(t *testing.T) {
	e := newRecoverEnv(t)
	ctx := context.Background()
	cs := e.crashAll()

	// What Service.Start does after a restart of node rec-a.
	e.rc.orphanOwn(ctx)
	e.rc.cleanSpool(ctx)
	if _, err := os.Stat(cs.stale); !os.IsNotExist(err) {
		t.Errorf("stale spool file kept: %v", err)
	}
	if _, err := os.Stat(cs.spooled); err != nil {
		t.Fatalf("the spooled part of a chunk awaiting recovery was removed: %v", err)
	}
	e.rc.recoverChunks(ctx)

	for _, tc := range []recoverCase{
		{"parts in storage", cs.fromStorage, 2 * crashPart, true},
		{"part in storage and spool", cs.fromSpool, crashPart + 1_500_000, true},
		{"every part stored", cs.whole, len(cs.whole.ct), false},
	} {
		t.Run(tc.name, func(t *testing.T) { e.checkKept(t, tc) })
	}
	if _, err := os.Stat(cs.spooled); !os.IsNotExist(err) {
		t.Errorf("spooled part not removed after recovery: %v", err)
	}
	if _, ch := e.after(cs.nothing); ch.Status != store.ChunkLost {
		t.Errorf("chunk with nothing stored: %s, want lost", ch.Status)
	}
	if rec, ch := e.after(cs.live); rec.Status != store.RecRecording || ch.Status != store.ChunkUploading {
		t.Errorf("a live recording was recovered: %s / %s", rec.Status, ch.Status)
	}
	e.checkUploadsClosed(cs)
	e.checkCleanupAndLease(cs)
}

// crashPart is the multipart part size of the crashed chunks.
const crashPart = 5 << 20

// crashedSet is what recorders left behind for recovery to find.
type crashedSet struct {
	fromStorage *crashed // two full parts stored, the rest gone
	fromSpool   *crashed // one part stored, the next half-written in the spool
	whole       *crashed // every part stored, the upload never completed
	nothing     *crashed // nothing stored
	live        *crashed // still being recorded by node rec-b
	spooled     string   // fromSpool's part in the spool
	stale       string   // a spool file of a chunk nobody awaits
	strayKey    string   // an object key no chunk names
	stray       string   // and an upload open on it
}

// recoverCase is a crashed chunk recovery keeps, and what it should keep.
type recoverCase struct {
	name      string
	c         *crashed
	stored    int // ciphertext bytes the object should hold
	truncated bool
}

// crashAll leaves the chunks of crashedSet as crashed recorders do.
func (e *recoverEnv) crashAll() crashedSet {
	t, ctx := e.t, context.Background()
	t.Helper()
	var cs crashedSet
	// Two full parts stored; the rest (in memory or on another disk) gone.
	cs.fromStorage = e.newCrashed("rec-a", 80*time.Second)
	e.upload(cs.fromStorage, 1, 0, crashPart)
	e.upload(cs.fromStorage, 2, crashPart, 2*crashPart)
	// One part stored, the next one half-written in this host's spool.
	cs.fromSpool = e.newCrashed("rec-a", 60*time.Second)
	e.upload(cs.fromSpool, 1, 0, crashPart)
	cs.spooled = e.spoolPart(cs.fromSpool, 2, crashPart, crashPart+1_500_000)
	// Everything stored, the upload never completed: a whole chunk.
	cs.whole = e.newCrashed("rec-a", 40*time.Second)
	e.upload(cs.whole, 1, 0, crashPart)
	e.upload(cs.whole, 2, crashPart, len(cs.whole.ct))
	// Nothing stored.
	cs.nothing = e.newCrashed("rec-a", 5*time.Second)
	// Still being recorded by a live recorder on another node.
	cs.live = e.newCrashed("rec-b", 40*time.Second)
	e.upload(cs.live, 1, 0, crashPart)
	// A stale spool file of a chunk nobody awaits, and an upload no chunk names.
	cs.stale = e.spool.partPath(uuid.NewString(), 0, 1)
	if err := os.WriteFile(cs.stale, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs.strayKey, _ = newObjectKey()
	stray, err := e.objs.newUpload(ctx, cs.strayKey)
	if err != nil {
		t.Fatal(err)
	}
	cs.stray = stray
	return cs
}

// checkKept checks a recovered chunk: complete (truncated if parts were
// missing), holding every whole segment of what was stored, playable, with
// the duration of what was kept, and its recovery audited once.
func (e *recoverEnv) checkKept(t *testing.T, tc recoverCase) {
	t.Helper()
	rec, ch := e.after(tc.c)
	if rec.Status != store.RecIncomplete || ch.Status != store.ChunkComplete || ch.Truncated != tc.truncated {
		t.Fatalf("recording %s, chunk %s truncated=%v; want incomplete, complete truncated=%v", rec.Status, ch.Status, ch.Truncated, tc.truncated)
	}
	if ch.Size != int64(tc.stored) || ch.UploadID != "" || len(ch.SHA256) != 32 {
		t.Errorf("chunk size %d (want %d), upload %q, sha256 %x", ch.Size, tc.stored, ch.UploadID, ch.SHA256)
	}
	want := tc.c.pt
	if tc.truncated {
		// Every whole segment in what was stored; a partial one is dropped.
		n := uint64(tc.stored / testSeg)
		want = tc.c.pt[:streamaead.PrefixPlaintextSize(n, streamaead.Params{SegmentSize: testSeg})]
		if ch.PlaintextSize != int64(len(want)) {
			t.Errorf("plaintext size %d, want %d", ch.PlaintextSize, len(want))
		}
	}
	got, err := e.play(rec, ch)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("playback: %v, %d bytes (want %d)", err, len(got), len(want))
	}
	in, err := InspectWebMPrefix(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := in.Track("V_VP8"); v.Frames == 0 || v.Keyframes == 0 {
		t.Errorf("no video in what was kept: %+v", in.Tracks)
	}
	if ch.DurationMS != in.Span().Milliseconds() || ch.DurationMS < 1000 {
		t.Errorf("duration %d ms, the kept media spans %v", ch.DurationMS, in.Span())
	}
	if rec.EndedAt == nil || !rec.EndedAt.Equal(tc.c.startedAt.Add(in.Span())) || rec.Size != ch.Size {
		t.Errorf("recording ended %v size %d; want %v, %d", rec.EndedAt, rec.Size, tc.c.startedAt.Add(in.Span()), ch.Size)
	}
	if tc.truncated {
		// The same object read as a normal chunk fails: only a
		// chunk recovery marked may end without its final segment.
		ch.Truncated = false
		if _, err := e.play(rec, ch); !IsIntegrityFailure(err) {
			t.Errorf("a cut object read as complete: %v, want an integrity failure", err)
		}
	}
	var audited int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = $1 AND resource_id = $2`, ActionRecordingRecover, rec.ID).Scan(&audited)
	if audited != 1 {
		t.Errorf("%d recovery audit entries, want 1", audited)
	}
}

// checkUploadsClosed: recovery leaves no multipart upload of the chunks it
// handled open; the live chunk's and the stray one stay open.
func (e *recoverEnv) checkUploadsClosed(cs crashedSet) {
	t := e.t
	t.Helper()
	open := map[string]bool{}
	ups, err := e.objs.listUploads(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		open[u.UploadID] = true
	}
	for name, c := range map[string]*crashed{"storage": cs.fromStorage, "spool": cs.fromSpool, "whole": cs.whole, "nothing": cs.nothing} {
		if open[c.uploadID] {
			t.Errorf("%s: multipart upload still open after recovery", name)
		}
	}
	if !open[cs.live.uploadID] || !open[cs.stray] {
		t.Fatalf("uploads before cleanup: live %v, stray %v", open[cs.live.uploadID], open[cs.stray])
	}
}

// checkCleanupAndLease: the cleanup aborts the upload no chunk names and
// keeps the live one's; once the live recorder stops heartbeating and its
// lease lapses, recovery takes its chunk.
func (e *recoverEnv) checkCleanupAndLease(cs crashedSet) {
	t, ctx := e.t, context.Background()
	t.Helper()
	n, err := AbortAbandonedUploads(ctx, e.pool, e.objs, time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("AbortAbandonedUploads = %d, %v; want 1", n, err)
	}
	if ups, _ := e.objs.uploadsOf(ctx, cs.strayKey); len(ups) != 0 {
		t.Error("the stray upload is still open")
	}
	if ups, _ := e.objs.uploadsOf(ctx, cs.live.chunk.ObjectKey); len(ups) != 1 {
		t.Error("the live chunk's upload was aborted")
	}
	// The live recorder stops heartbeating: after the lease, recovery takes it.
	if _, err := e.pool.Exec(ctx, `UPDATE recordings SET status = 'incomplete', heartbeat_at = now() - interval '1 hour' WHERE id = $1`, cs.live.rec.ID); err != nil {
		t.Fatal(err)
	}
	e.rc.recoverChunks(ctx)
	if _, ch := e.after(cs.live); ch.Status != store.ChunkComplete || !ch.Truncated {
		t.Errorf("orphaned chunk of another node: %s truncated=%v", ch.Status, ch.Truncated)
	}
}
