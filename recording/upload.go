package recording

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/recording/streamaead"
)

// uploadEnv is what chunk uploads share.
type uploadEnv struct {
	objs     *Objects
	spool    *Spool
	pool     *pgxpool.Pool
	log      *slog.Logger
	partSize int
	// ctx ends retries: the service is shutting down for good.
	ctx context.Context
	wg  *sync.WaitGroup
	// counters
	partsUploaded, uploadRetries *atomic.Uint64
}

// retry runs fn until it succeeds or ctx ends, backing off up to 5 s.
func retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return fmt.Errorf("%s: %w", what, perm.err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		}
		if attempt == 1 || attempt%20 == 0 {
			log.Warn("retrying", "op", what, "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

type spooledPart struct {
	path string
	num  int // part number, from 1
	size int64
}

// chunkUpload is the sink of one chunk's ciphertext: it appends it to part
// files in the spool and uploads them in order as one multipart upload,
// then records the object. The chunk row names the upload as soon as it
// exists, so that a crash leaves it findable: whatever happens, the chunk is
// either recorded complete here or left 'uploading' for recovery
// (recover.go) to complete from what reached storage and the spool.
// Lifecycle: newChunkUpload → Write… → Close (returns at once) → the upload
// goroutine finishes (done closes). Write and Close are called from one
// goroutine.
type chunkUpload struct {
	env       *uploadEnv
	rec       string
	seq       int
	key       string
	startedAt time.Time
	log       *slog.Logger

	cur     *os.File // the part file being appended to
	curPath string
	curSize int64
	parts   int // part files opened so far
	header  []byte
	hash    hash.Hash
	size    int64
	failed  error

	// Set by the muxer before Close.
	endedAt    time.Time
	durationMS int64

	abandon chan struct{} // closed to stop waiting for spool room

	mu     sync.Mutex
	queue  []spooledPart
	closed bool
	wake   chan struct{}
	done   chan struct{}
	status string // final: complete, or unfinished (left for recovery)
}

func newChunkUpload(env *uploadEnv, rec string, seq int, started time.Time) (*chunkUpload, error) {
	key, err := newObjectKey()
	if err != nil {
		return nil, err
	}
	return &chunkUpload{
		env: env, rec: rec, seq: seq, key: key, startedAt: started,
		log:     env.log.With("recording", rec, "chunk", seq),
		hash:    sha256.New(),
		abandon: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}, nil
}

// Write takes ciphertext (the encryptor writes whole segments). It fails
// only when the chunk was abandoned or the spool failed; the caller then
// stops writing to it.
func (c *chunkUpload) Write(p []byte) (int, error) {
	if c.failed != nil {
		return 0, c.failed
	}
	n := len(p)
	c.hash.Write(p)
	c.size += int64(n)
	if len(c.header) < streamaead.HeaderSize {
		k := min(streamaead.HeaderSize-len(c.header), len(p))
		c.header = append(c.header, p[:k]...)
	}
	for len(p) > 0 {
		k := min(int64(c.env.partSize)-c.curSize, int64(len(p)))
		if err := c.append(p[:k]); err != nil {
			c.failed = err
			return n - len(p), err
		}
		p = p[k:]
		if c.curSize == int64(c.env.partSize) {
			if err := c.closePart(); err != nil {
				c.failed = err
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// append adds b to the current part file (opening the next one if none).
func (c *chunkUpload) append(b []byte) error {
	if c.cur == nil {
		f, path, err := c.env.spool.create(c.rec, c.seq, c.parts+1)
		if err != nil {
			return err
		}
		c.parts++
		c.cur, c.curPath, c.curSize = f, path, 0
	}
	if err := c.env.spool.reserve(int64(len(b)), c.abandon); err != nil {
		return err
	}
	if _, err := c.cur.Write(b); err != nil {
		c.env.spool.release(int64(len(b)))
		return fmt.Errorf("recording: spool write: %w", err)
	}
	c.curSize += int64(len(b))
	return nil
}

// closePart queues the current part file for upload.
func (c *chunkUpload) closePart() error {
	if c.cur == nil {
		return nil
	}
	err := c.cur.Close()
	c.cur = nil
	if err != nil {
		return fmt.Errorf("recording: spool close: %w", err)
	}
	c.mu.Lock()
	c.queue = append(c.queue, spooledPart{path: c.curPath, num: c.parts, size: c.curSize})
	c.mu.Unlock()
	c.curSize = 0
	c.signal()
	return nil
}

func (c *chunkUpload) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// start launches the upload goroutine (after the header was written).
func (c *chunkUpload) start() {
	c.env.wg.Add(1)
	go func() {
		defer c.env.wg.Done()
		defer close(c.done)
		c.run()
	}()
}

// Close hands over the last part. It does not wait for the upload.
func (c *chunkUpload) Close() error {
	if err := c.closePart(); err != nil && c.failed == nil {
		c.failed = err
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
	return nil
}

// abandonNow stops waiting for spool room (shutdown with storage down).
func (c *chunkUpload) abandonNow() {
	select {
	case <-c.abandon:
	default:
		close(c.abandon)
	}
}

func (c *chunkUpload) next() (spooledPart, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 {
		p := c.queue[0]
		c.queue = c.queue[1:]
		return p, true, false
	}
	return spooledPart{}, false, c.closed
}

func (c *chunkUpload) run() {
	ctx, env := c.env.ctx, c.env
	err := retry(ctx, c.log, "record chunk", func(ctx context.Context) error {
		err := store.AddChunk(ctx, env.pool, store.Chunk{RecordingID: c.rec, Seq: c.seq, ObjectKey: c.key, Header: c.header, StartedAt: c.startedAt})
		if err != nil && strings.Contains(err.Error(), "23505") {
			return nil // inserted by an earlier attempt whose answer was lost
		}
		return err
	})
	if err != nil {
		c.leave(err)
		return
	}
	uploadID, parts, err := c.uploadParts(ctx)
	if err == nil && c.failed != nil {
		err = c.failed
	}
	if err == nil {
		err = retry(ctx, c.log, "complete multipart upload", func(ctx context.Context) error {
			err := env.objs.complete(ctx, c.key, uploadID, parts)
			if isNoSuchUpload(err) {
				// An earlier attempt completed it and the answer was lost; or
				// recovery completed it, believing this recorder dead.
				if size, serr := env.objs.Size(ctx, c.key); serr == nil && size == c.size {
					return nil
				}
				return permanent(err)
			}
			return err
		})
	}
	if err != nil {
		c.leave(err)
		return
	}
	c.finish()
}

// uploadParts uploads the spooled parts in order as they come, creating
// the multipart upload (and naming it on the chunk row) before the first.
func (c *chunkUpload) uploadParts(ctx context.Context) (string, []minio.CompletePart, error) {
	env := c.env
	var uploadID string
	var parts []minio.CompletePart
	for {
		p, ok, closed := c.next()
		if !ok {
			if closed {
				return uploadID, parts, nil
			}
			select {
			case <-c.wake:
			case <-ctx.Done():
				return uploadID, parts, ctx.Err()
			}
			continue
		}
		if uploadID == "" {
			id, err := c.newUpload(ctx)
			if err != nil {
				return "", nil, err
			}
			uploadID = id
		}
		data, err := os.ReadFile(p.path)
		if err != nil {
			return uploadID, parts, fmt.Errorf("read spooled part: %w", err)
		}
		attempts := 0
		err = retry(ctx, c.log, "upload part", func(ctx context.Context) error {
			attempts++
			cp, err := env.objs.putPart(ctx, c.key, uploadID, p.num, data)
			if isNoSuchUpload(err) {
				return permanent(err) // recovery completed the upload under us
			}
			if err == nil {
				parts = append(parts, cp)
			}
			return err
		})
		env.uploadRetries.Add(uint64(attempts - 1))
		if err != nil {
			return uploadID, parts, err
		}
		env.partsUploaded.Add(1)
		env.spool.remove(p.path, p.size)
	}
}

// newUpload creates the chunk's multipart upload and stores its ID on the
// chunk row before any part is sent, so that a crash leaves it findable.
func (c *chunkUpload) newUpload(ctx context.Context) (string, error) {
	var id string
	if err := retry(ctx, c.log, "create multipart upload", func(ctx context.Context) error {
		var err error
		id, err = c.env.objs.newUpload(ctx, c.key)
		return err
	}); err != nil {
		return "", err
	}
	err := retry(ctx, c.log, "record multipart upload", func(ctx context.Context) error {
		return store.SetChunkUpload(ctx, c.env.pool, c.rec, c.seq, id)
	})
	return id, err
}

// leave gives up on the chunk in this process: the row stays 'uploading',
// the multipart upload open and unsent parts in the spool, for recovery to
// complete once the recording has stopped (recover.go). If the upload is
// gone (recovery already completed it), the spooled parts are of no use.
func (c *chunkUpload) leave(cause error) {
	c.mu.Lock()
	c.status = "unfinished"
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	if isNoSuchUpload(cause) {
		for _, p := range queue {
			c.env.spool.remove(p.path, p.size)
		}
	}
	c.log.Warn("chunk not completed here; left for recovery", "err", cause)
}

// finish records the completed chunk (best effort when ctx is ending: the
// row then stays 'uploading' and recovery finds the object complete).
func (c *chunkUpload) finish() {
	c.mu.Lock()
	c.status = store.ChunkComplete
	c.mu.Unlock()
	ended := c.endedAt
	if ended.IsZero() {
		ended = time.Now()
	}
	ch := store.Chunk{RecordingID: c.rec, Seq: c.seq, Status: store.ChunkComplete, EndedAt: &ended, DurationMS: c.durationMS,
		Size: c.size, SHA256: c.hash.Sum(nil)}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.env.ctx), 10*time.Second)
	defer cancel()
	if err := retry(ctx, c.log, "finish chunk", func(ctx context.Context) error { return store.FinishChunk(ctx, c.env.pool, ch) }); err != nil {
		c.log.Error("chunk outcome not recorded", "err", err)
	}
}

// result waits for the upload and returns its status.
func (c *chunkUpload) result() string {
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

func isNoSuchUpload(err error) bool { return s3Code(err) == "NoSuchUpload" }

func isNoSuchKey(err error) bool { return s3Code(err) == "NoSuchKey" }

// s3Code is the S3 error code of err (wrapped or not), or "".
func s3Code(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

// permanentError stops retry: trying again cannot help.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }
