package recording

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/recording/streamaead"
)

// Crash recovery. A recorder that stops without finishing a chunk (killed,
// crashed, shut down with storage unreachable) leaves the chunk row
// 'uploading' with its multipart upload named on it (upload_id), parts in
// storage, and — on its own disk — the spooled parts not yet uploaded. Once
// the recording is no longer being recorded (this recorder restarted, or the
// sweep found its lease lapsed), recovery claims the chunk, uploads the
// spooled parts it finds here, completes the upload with every part stored
// (or aborts it when there is none), and reads the object back: if its final
// segment authenticates the chunk is complete; otherwise it is complete and
// truncated, and exactly its whole, authenticated segments are served
// (plaintext_size). Its duration is the media time the WebM prefix covers.
// Open multipart uploads that no chunk row names (a crash between creating
// one and naming it) are aborted after abandonedUploadAge.

// ActionRecordingRecover audits what recovery did with a chunk.
const ActionRecordingRecover = "recording.recover"

const (
	recoverEvery = 15 * time.Second
	cleanupEvery = time.Hour
	// abandonedUploadAge: an open upload under rec/ that no uploading chunk
	// names is aborted once this old. It only has to cover the moment
	// between creating an upload and storing its ID on the chunk row.
	abandonedUploadAge = time.Hour
	// recoverTimeout bounds the recovery of one chunk (storage calls and
	// reading the object back).
	recoverTimeout = 5 * time.Minute
	// minPartSize is S3's smallest part but the last.
	minPartSize = 5 << 20
)

// recovery recovers chunks left unfinished and cleans up after them. The
// recorder runs it (startRecovery); it holds no state between calls.
type recovery struct {
	pool  *pgxpool.Pool
	objs  *Objects
	keys  *keys.KeyringFile
	spool *Spool
	node  string // this recorder: its own unfinished chunks need no lapsed lease
	log   *slog.Logger
	now   func() time.Time
}

// startRecovery is called once by Start, before the recorder records
// anything: it marks this node's unfinished recordings incomplete (the
// process just started, so nothing of them is being recorded), removes
// spooled parts that no chunk awaits, and starts the recovery and cleanup
// loop, whose first pass runs at once.
func (s *Service) startRecovery(ctx context.Context) {
	rc := &recovery{pool: s.p.Pool, objs: s.p.Objects, keys: s.p.Keys, spool: s.p.Spool, node: s.p.Node, log: s.log, now: s.p.Now}
	s.rc = rc
	rc.orphanOwn(ctx)
	rc.cleanSpool(ctx)
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		ctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		rc.run(ctx)
	}()
}

// run recovers at once and every recoverEvery, and aborts abandoned
// uploads at once and every cleanupEvery, until ctx ends.
func (rc *recovery) run(ctx context.Context) {
	recoverTick := time.NewTicker(recoverEvery)
	defer recoverTick.Stop()
	cleanupTick := time.NewTicker(cleanupEvery)
	defer cleanupTick.Stop()
	rc.recoverChunks(ctx)
	rc.cleanupUploads(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-recoverTick.C:
			rc.recoverChunks(ctx)
		case <-cleanupTick.C:
			rc.cleanupUploads(ctx)
		}
	}
}

// orphanOwn marks this node's unfinished recordings incomplete, audited.
func (rc *recovery) orphanOwn(ctx context.Context) {
	orphans, err := store.OrphanRecordingsOfNode(ctx, rc.pool, rc.node)
	if err != nil {
		rc.log.Warn("recovery: recordings of the previous process not marked; the sweep will", "err", err)
	}
	for _, id := range orphans {
		rc.log.Warn("recording interrupted by a restart of its recorder: marked incomplete", "recording", id)
		if err := audit.New(rc.pool).Append(ctx, audit.Event{
			ActorID: "recorder:" + rc.node, ActorRole: "system", Action: ActionRecordingSweep,
			ResourceType: "recording", ResourceID: id, Outcome: audit.Success, Reason: "recorder restarted",
		}); err != nil {
			rc.log.Error("audit append failed", "action", ActionRecordingSweep, "err", err)
		}
	}
}

// cleanSpool removes spooled parts whose chunk is not awaiting recovery
// (finished, or unknown: the process died before recording the chunk).
// It runs before the recorder writes any part.
func (rc *recovery) cleanSpool(ctx context.Context) {
	files := rc.spool.leftovers()
	keep := map[string]bool{}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.rec] {
			continue
		}
		seen[f.rec] = true
		chunks, err := store.ChunksOf(ctx, rc.pool, f.rec)
		if err != nil {
			rc.log.Warn("recovery: spool not cleaned", "err", err)
			return
		}
		for _, c := range chunks {
			if c.Status == store.ChunkUploading {
				keep[spoolKey(c.RecordingID, c.Seq)] = true
			}
		}
	}
	for _, f := range files {
		if !keep[spoolKey(f.rec, f.seq)] {
			rc.spool.remove(f.path, f.size)
		}
	}
}

func spoolKey(rec string, seq int) string { return rec + "." + strconv.Itoa(seq) }

// claimFunc locks one chunk to recover (store.ClaimRecoverableChunk,
// store.ClaimTakenOverChunk), passing over the object keys in skip.
type claimFunc func(ctx context.Context, tx pgx.Tx, skip []string) (store.RecoverableChunk, bool, error)

// recoverChunks recovers every chunk that can be, one at a time; a chunk
// whose recovery fails (storage down) is tried again next pass.
func (rc *recovery) recoverChunks(ctx context.Context) {
	rc.recoverAll(ctx, func(ctx context.Context, tx pgx.Tx, skip []string) (store.RecoverableChunk, bool, error) {
		return store.ClaimRecoverableChunk(ctx, tx, rc.node, rc.now().Add(-leaseTimeout), skip)
	})
}

// recoverAll recovers, one at a time, every chunk claim yields. It returns
// whether every chunk it found was recovered (false: some will be tried
// again by the next pass of run).
func (rc *recovery) recoverAll(ctx context.Context, claim claimFunc) bool {
	var tried []string
	all := true
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, recoverTimeout)
		key, err := rc.recoverOne(cctx, claim, tried)
		cancel()
		if key == "" {
			if err != nil {
				rc.log.Warn("recovery: claim", "err", err)
				all = false
			}
			return all && ctx.Err() == nil
		}
		tried = append(tried, key)
		if err != nil {
			all = false
			rc.log.Warn("recovery: chunk not recovered yet; trying again later", "err", err)
		}
	}
	return false
}

// recoverOne claims one chunk and recovers it in the claiming transaction
// (so the chunk's row, the recording's extent and the audit entry commit
// together). It returns the chunk's object key ("" when none was left).
func (rc *recovery) recoverOne(ctx context.Context, claim claimFunc, skip []string) (string, error) {
	var key string
	var used []spoolFile
	err := pgx.BeginFunc(ctx, rc.pool, func(tx pgx.Tx) error {
		ch, ok, err := claim(ctx, tx, skip)
		if err != nil || !ok {
			return err
		}
		key = ch.ObjectKey
		log := rc.log.With("recording", ch.RecordingID, "chunk", ch.Seq)
		out, err := rc.recoverObject(ctx, ch, log)
		if err != nil {
			return err
		}
		used = out.spooled
		if err := store.FinishRecoveredChunk(ctx, tx, out.chunk); err != nil {
			return err
		}
		if err := store.RefreshRecordingExtent(ctx, tx, ch.RecordingID); err != nil {
			return err
		}
		if out.integrity != "" {
			if _, err := alerts.Raise(ctx, tx, alerts.KindIntegrityFailure, ch.RecordingID, out.integrity, rc.now()); err != nil {
				return err
			}
		}
		log.Warn("chunk recovered", "status", out.chunk.Status, "truncated", out.chunk.Truncated, "duration_ms", out.chunk.DurationMS)
		return audit.AppendTx(ctx, tx, audit.Event{
			ActorID: "recorder:" + rc.node, ActorRole: "system", Action: ActionRecordingRecover,
			ResourceType: "recording", ResourceID: ch.RecordingID, VisitID: ch.VisitID,
			Outcome: audit.Success, Reason: out.reason,
		})
	})
	if err == nil {
		for _, f := range used {
			rc.spool.remove(f.path, f.size)
		}
	}
	return key, err
}

// recovered is what recovery made of a chunk.
type recovered struct {
	chunk     store.Chunk
	reason    string      // for the audit entry
	integrity string      // set when the object failed authentication: alert detail
	spooled   []spoolFile // spool files now in storage (removed after commit)
}

// recoverObject completes the chunk's upload from what reached storage and
// the spool, and reads the object back. An error leaves the chunk for the
// next pass; a chunk with nothing stored comes back lost.
func (rc *recovery) recoverObject(ctx context.Context, ch store.RecoverableChunk, log *slog.Logger) (recovered, error) {
	out := recovered{chunk: store.Chunk{RecordingID: ch.RecordingID, Seq: ch.Seq, Status: store.ChunkLost, EndedAt: &ch.StartedAt}}
	objs := rc.objs
	var files []spoolFile
	for _, f := range rc.spool.leftovers() {
		if f.rec == ch.RecordingID && f.seq == ch.Seq {
			files = append(files, f)
		}
	}
	uploadID, err := rc.findUpload(ctx, ch, len(files) > 0)
	if err != nil {
		return out, err
	}
	log.Info("recovering chunk", "upload", uploadID != "", "spooled_parts", len(files))
	if uploadID != "" {
		n, err := rc.completeUpload(ctx, ch.ObjectKey, uploadID, files)
		if err != nil {
			return out, err
		}
		out.spooled = files
		if n == 0 {
			out.reason = fmt.Sprintf("chunk=%d lost: nothing reached storage", ch.Seq)
			return out, nil
		}
	} else if _, err := objs.Size(ctx, ch.ObjectKey); err != nil {
		if !isNoSuchKey(err) {
			return out, err
		}
		out.spooled = files // stale: neither an upload nor an object
		out.reason = fmt.Sprintf("chunk=%d lost: nothing reached storage", ch.Seq)
		return out, nil
	}
	return rc.scanRecovered(ctx, ch, out, log)
}

// findUpload returns the chunk's open multipart upload: the one named on
// its row, or (a crash before the row was updated) the one open for its
// key, or a new one when only the spool holds parts. "" means none: the
// object was completed already, or nothing was ever stored.
func (rc *recovery) findUpload(ctx context.Context, ch store.RecoverableChunk, spooled bool) (string, error) {
	objs := rc.objs
	if ch.UploadID != "" {
		if _, err := objs.uploadedParts(ctx, ch.ObjectKey, ch.UploadID); err == nil {
			return ch.UploadID, nil
		} else if !isNoSuchUpload(err) {
			return "", err
		}
	}
	ups, err := objs.uploadsOf(ctx, ch.ObjectKey)
	if err != nil {
		return "", err
	}
	if len(ups) > 0 {
		slices.SortFunc(ups, func(a, b minio.ObjectMultipartInfo) int { return b.Initiated.Compare(a.Initiated) })
		for _, u := range ups[1:] {
			_ = objs.abort(ctx, ch.ObjectKey, u.UploadID)
		}
		return ups[0].UploadID, nil
	}
	if !spooled {
		return "", nil
	}
	if _, err := objs.Size(ctx, ch.ObjectKey); err == nil {
		return "", nil // completed before the crash; the spool copy is stale
	}
	return objs.newUpload(ctx, ch.ObjectKey)
}

// completeUpload uploads the spooled parts storage lacks, then completes
// the upload with its parts 1..n that are contiguous (each but the last a
// full S3 part), or aborts it when there are none. It returns n.
func (rc *recovery) completeUpload(ctx context.Context, key, uploadID string, files []spoolFile) (int, error) {
	objs := rc.objs
	stored, err := objs.uploadedParts(ctx, key, uploadID)
	if err != nil {
		return 0, err
	}
	have := map[int]int64{}
	for _, p := range stored {
		have[p.PartNumber] = p.Size
	}
	for _, f := range files {
		if size, ok := have[f.num]; ok && size == f.size {
			continue // uploaded before the crash; its spool copy was not yet removed
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			return 0, err
		}
		if _, err := objs.putPart(ctx, key, uploadID, f.num, data); err != nil {
			return 0, err
		}
	}
	if stored, err = objs.uploadedParts(ctx, key, uploadID); err != nil {
		return 0, err
	}
	slices.SortFunc(stored, func(a, b minio.ObjectPart) int { return a.PartNumber - b.PartNumber })
	var parts []minio.CompletePart
	for i, p := range stored {
		if p.PartNumber != i+1 || (i > 0 && stored[i-1].Size < minPartSize) {
			break // a gap, or a short part that cannot be followed
		}
		parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
	}
	if len(parts) == 0 {
		return 0, objs.abort(ctx, key, uploadID)
	}
	if err := objs.complete(ctx, key, uploadID, parts); err != nil {
		return 0, err
	}
	return len(parts), nil
}

// scanRecovered reads the completed object back: it checks the header
// against the chunk row, finds how much authenticates (all of it with the
// final segment, or the whole segments before the cut), hashes the
// ciphertext and measures the media time the plaintext covers.
func (rc *recovery) scanRecovered(ctx context.Context, ch store.RecoverableChunk, out recovered, log *slog.Logger) (recovered, error) {
	kr, err := rc.keys.Keyring()
	if err != nil {
		return out, err
	}
	dek, err := kr.Unwrap(ch.KEKID, ch.WrappedDEK, ch.RecordingID)
	if err != nil {
		return out, fmt.Errorf("recording: recovery: unwrap data key: %w", err)
	}
	defer clear(dek)
	obj, err := rc.objs.open(ctx, ch.ObjectKey)
	if err != nil {
		return out, err
	}
	defer obj.Close()
	sum := sha256.New()
	counted := &countingReader{r: io.TeeReader(obj, sum)}
	res, err := readPrefix(counted, dek, ch, log)
	if err != nil && !errors.Is(err, streamaead.ErrAuthentication) {
		return out, err // storage failed mid-read: try again later
	}
	if _, cerr := io.Copy(io.Discard, counted); cerr != nil {
		return out, cerr
	}
	c := &out.chunk
	c.Size, c.SHA256 = counted.n, sum.Sum(nil)
	if err != nil {
		out.integrity = fmt.Sprintf("chunk %d of the recording failed authentication during crash recovery (%v); only the part before it is kept", ch.Seq, err)
		log.Error("recovery: object failed authentication", "err", err)
	}
	if res.plaintext == 0 {
		out.reason = fmt.Sprintf("chunk=%d lost: no whole segment was stored", ch.Seq)
		c.Size, c.SHA256 = 0, nil
		if out.integrity != "" {
			return out, nil // keep what failed authentication for whoever looks into it
		}
		if err := rc.objs.Remove(ctx, ch.ObjectKey); err != nil {
			log.Warn("recovery: empty object not removed", "err", err)
		}
		return out, nil
	}
	ended := ch.StartedAt.Add(res.span)
	c.Status, c.EndedAt, c.DurationMS = store.ChunkComplete, &ended, res.span.Milliseconds()
	c.Truncated = !res.complete || err != nil
	if c.Truncated {
		c.PlaintextSize = res.plaintext
	}
	out.reason = fmt.Sprintf("chunk=%d kept_ms=%d truncated=%t bytes=%d", ch.Seq, c.DurationMS, c.Truncated, res.plaintext)
	if out.integrity != "" {
		out.reason += " integrity"
	}
	return out, nil
}

// prefixScan is what of a recovered object authenticated.
type prefixScan struct {
	complete  bool
	plaintext int64
	span      time.Duration
}

// readPrefix decrypts the object's authenticated prefix, parsing the WebM
// as it goes. On an integrity error it still returns the prefix before it.
func readPrefix(src io.Reader, dek []byte, ch store.RecoverableChunk, log *slog.Logger) (prefixScan, error) {
	var res prefixScan
	header := make([]byte, streamaead.HeaderSize)
	if _, err := io.ReadFull(src, header); err != nil {
		return res, fmt.Errorf("recovery: object header: %w", streamaead.ErrTruncated)
	}
	if string(header) != string(ch.Header) {
		return res, fmt.Errorf("recovery: object header differs from the chunk's: %w", streamaead.ErrAuthentication)
	}
	r, err := streamaead.NewPrefixReader(io.MultiReader(bytes.NewReader(header), src), dek, []byte(ch.RecordingID),
		streamaead.Params{SegmentSize: ch.SegmentSize})
	if err != nil {
		if errors.Is(err, streamaead.ErrAuthentication) {
			return res, err
		}
		return res, fmt.Errorf("recovery: %w", err)
	}
	defer r.Close()
	pr, pw := io.Pipe()
	inspected := make(chan Inspection, 1)
	go func() {
		in, ierr := InspectWebMPrefix(pr)
		if ierr != nil {
			log.Warn("recovery: WebM prefix does not parse", "err", ierr)
		}
		_, _ = io.Copy(io.Discard, pr)
		inspected <- in
	}()
	n, err := io.Copy(pw, r)
	pw.Close()
	in := <-inspected
	res.plaintext, res.span = n, in.Span()
	res.complete = err == nil && r.Complete()
	if err == nil && r.Dropped() > 0 {
		log.Info("recovery: partial trailing segment dropped", "bytes", r.Dropped())
	}
	return res, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// cleanupUploads aborts open multipart uploads that no chunk awaits.
func (rc *recovery) cleanupUploads(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	n, err := AbortAbandonedUploads(ctx, rc.pool, rc.objs, rc.now().Add(-abandonedUploadAge))
	if err != nil {
		rc.log.Warn("multipart cleanup", "err", err)
	}
	if n > 0 {
		rc.log.Info("aborted abandoned multipart uploads", "count", n)
	}
}

// AbortAbandonedUploads aborts the bucket's open multipart uploads under
// rec/ begun before olderThan that no uploading chunk names (an upload
// whose chunk is awaiting recovery is kept). It returns how many it
// aborted. This is the cleanup FORMAT.md and DESIGN.md promise: MinIO has
// no AbortIncompleteMultipartUpload lifecycle rule.
func AbortAbandonedUploads(ctx context.Context, pool *pgxpool.Pool, objs *Objects, olderThan time.Time) (int, error) {
	ups, err := objs.listUploads(ctx, "")
	if err != nil {
		return 0, err
	}
	var old []minio.ObjectMultipartInfo
	var keys []string
	for _, u := range ups {
		if len(u.Key) > 4 && u.Key[:4] == "rec/" && u.Initiated.Before(olderThan) {
			old = append(old, u)
			keys = append(keys, u.Key)
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	inUse, err := store.UploadingObjectKeys(ctx, pool, keys)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range old {
		if inUse[u.Key] {
			continue
		}
		if err := objs.abort(ctx, u.Key, u.UploadID); err != nil && !isNoSuchUpload(err) {
			return n, fmt.Errorf("recording: abort abandoned upload: %w", err)
		}
		n++
	}
	return n, nil
}
