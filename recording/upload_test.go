package recording

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/store"
)

// uploadFor returns a chunk upload of c's recording on env e, with its own
// shutdown context.
func (e *recoverEnv) uploadFor(c *crashed, ctx context.Context, wg *sync.WaitGroup) (*chunkUpload, *uploadEnv) {
	e.t.Helper()
	env := &uploadEnv{objs: e.objs, spool: e.spool, pool: e.pool, log: e.rc.log, partSize: 5 << 20, ctx: ctx, wg: wg,
		partsUploaded: &atomic.Uint64{}, uploadRetries: &atomic.Uint64{}}
	u, err := newChunkUpload(env, c.rec.ID, 0, c.startedAt)
	if err != nil {
		e.t.Fatal(err)
	}
	return u, env
}

// write feeds ct to u as the encryptor does: the header, then segments.
func write(t *testing.T, u *chunkUpload, ct []byte) {
	t.Helper()
	for off := 0; off < len(ct); {
		n := min(testSeg, len(ct)-off)
		if off == 0 {
			n = 40
		}
		if _, err := u.Write(ct[off : off+n]); err != nil {
			t.Fatal(err)
		}
		if off == 0 {
			u.start()
		}
		off += n
	}
}

// TestChunkUploadThroughSpool: a chunk's ciphertext goes through the spool
// into one multipart upload whose ID is on the chunk row while it is open;
// the completed object is byte for byte what was written and the spool is
// empty after.
func TestChunkUploadThroughSpool(t *testing.T) {
	e := newRecoverEnv(t)
	ctx := context.Background()
	c := e.newRecording("rec-a", 50*time.Second) // ≈ 7.5 MB: two parts
	var wg sync.WaitGroup
	u, env := e.uploadFor(c, ctx, &wg)
	write(t, u, c.ct[:6<<20])
	waitUntil(t, "the first part uploaded", func() bool { return env.partsUploaded.Load() == 1 })
	chunks, err := store.ChunksOf(ctx, e.pool, c.rec.ID)
	if err != nil || len(chunks) != 1 || chunks[0].UploadID == "" || chunks[0].Status != store.ChunkUploading {
		t.Fatalf("while uploading, the chunk row: %v %+v; want uploading with its upload ID", err, chunks)
	}
	if _, err := u.Write(c.ct[6<<20:]); err != nil {
		t.Fatal(err)
	}
	u.Close()
	if st := u.result(); st != store.ChunkComplete {
		t.Fatalf("upload %s, want complete", st)
	}
	wg.Wait()
	obj, err := e.objs.Get(ctx, u.key)
	if err != nil || !bytes.Equal(obj, c.ct) {
		t.Fatalf("object: %v, %d bytes (want %d)", err, len(obj), len(c.ct))
	}
	chunks, _ = store.ChunksOf(ctx, e.pool, c.rec.ID)
	sum := sha256.Sum256(c.ct)
	if ch := chunks[0]; ch.Status != store.ChunkComplete || ch.UploadID != "" || ch.Size != int64(len(c.ct)) || !bytes.Equal(ch.SHA256, sum[:]) {
		t.Errorf("chunk row %+v", ch)
	}
	if n := e.spool.Used(); n != 0 || len(e.spool.leftovers()) != 0 {
		t.Errorf("spool holds %d bytes (%d files) after the upload", n, len(e.spool.leftovers()))
	}
}

// TestShutdownLeavesChunkForRecovery: a recorder that stops for good with a
// chunk unfinished (its context ends: shutdown with storage slow or down)
// does not mark it lost; the chunk stays uploading with its upload named
// and its unsent part in the spool, and recovery at the next start keeps
// all of it.
func TestShutdownLeavesChunkForRecovery(t *testing.T) {
	e := newRecoverEnv(t)
	ctx := context.Background()
	c := e.newRecording("rec-a", 50*time.Second)
	var wg sync.WaitGroup
	uctx, stop := context.WithCancel(ctx)
	u, env := e.uploadFor(c, uctx, &wg)
	write(t, u, c.ct[:6<<20])
	waitUntil(t, "the first part uploaded", func() bool { return env.partsUploaded.Load() == 1 })
	stop() // the service gives up
	if _, err := u.Write(c.ct[6<<20 : 7<<20]); err != nil {
		t.Fatal(err)
	}
	u.Close()
	if st := u.result(); st == store.ChunkComplete {
		t.Fatal("the chunk completed after its context ended")
	}
	wg.Wait()
	chunks, _ := store.ChunksOf(ctx, e.pool, c.rec.ID)
	if ch := chunks[0]; ch.Status != store.ChunkUploading || ch.UploadID == "" {
		t.Fatalf("chunk row after shutdown: %+v; want uploading, upload named", ch)
	}
	if files := e.spool.leftovers(); len(files) != 1 || files[0].num != 2 || files[0].size != 2<<20 {
		t.Fatalf("spool after shutdown: %+v; want part 2 (2 MiB)", files)
	}

	// The next start of node rec-a.
	e.rc.orphanOwn(ctx)
	e.rc.cleanSpool(ctx)
	e.rc.recoverChunks(ctx)
	rec, ch := e.after(c)
	if rec.Status != store.RecIncomplete || ch.Status != store.ChunkComplete || !ch.Truncated || ch.Size != 7<<20 {
		t.Fatalf("after recovery: recording %s, chunk %+v; want incomplete, complete truncated, 7 MiB", rec.Status, ch)
	}
	got, err := e.play(rec, ch)
	if err != nil || !bytes.HasPrefix(c.pt, got) || len(got) < len(c.pt)*7/8-testSeg {
		t.Errorf("playback after recovery: %v, %d of %d bytes", err, len(got), len(c.pt))
	}
	if len(e.spool.leftovers()) != 0 {
		t.Error("spool not emptied by recovery")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
