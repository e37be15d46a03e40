package recording

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/recording/streamaead"
)

// Spool is a bounded directory of ciphertext parts waiting for object
// storage. Every part passes through it, so an outage only makes it fill;
// when it is full, writers wait (and the recorder's queue drops media,
// counted) until uploads drain it. It never holds plaintext.
type Spool struct {
	dir  string
	max  int64
	used atomic.Int64
}

// NewSpool opens dir (mode 0700) with room for max bytes. Parts left by a
// previous process belong to chunks the startup sweep marks lost; they are
// removed.
func NewSpool(dir string, max int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: spool: %w", err)
	}
	stale, _ := filepath.Glob(filepath.Join(dir, "*.part"))
	for _, p := range stale {
		_ = os.Remove(p)
	}
	return &Spool{dir: dir, max: max}, nil
}

// Used returns the bytes spooled now.
func (s *Spool) Used() int64 { return s.used.Load() }

// put writes data to a new file once there is room, or fails when cancel
// closes first.
func (s *Spool) put(data []byte, cancel <-chan struct{}) (string, error) {
	n := int64(len(data))
	for {
		u := s.used.Load()
		if u+n <= s.max {
			if s.used.CompareAndSwap(u, u+n) {
				break
			}
			continue
		}
		select {
		case <-cancel:
			return "", errSpoolFull
		case <-time.After(50 * time.Millisecond):
		}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	p := filepath.Join(s.dir, hex.EncodeToString(b[:])+".part")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		s.used.Add(-n)
		return "", fmt.Errorf("recording: spool write: %w", err)
	}
	return p, nil
}

func (s *Spool) remove(path string, n int64) {
	if err := os.Remove(path); err == nil || errors.Is(err, os.ErrNotExist) {
		s.used.Add(-n)
	}
}

var errSpoolFull = errors.New("recording: spool full and the chunk was abandoned")

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
	size int64
}

// chunkUpload is the sink of one chunk's ciphertext: it cuts it into parts,
// spools each and uploads them in order as one multipart upload, then
// records the object. Lifecycle: newChunkUpload → Write… → Close (returns
// at once) → the upload goroutine finishes (done closes). Write and Close
// are called from one goroutine.
type chunkUpload struct {
	env       *uploadEnv
	rec       string
	seq       int
	key       string
	startedAt time.Time
	log       *slog.Logger

	buf    []byte
	header []byte
	hash   hash.Hash
	size   int64
	failed error

	// Set by the muxer before Close.
	endedAt    time.Time
	durationMS int64

	abandon chan struct{} // closed to stop waiting for spool room

	mu     sync.Mutex
	queue  []spooledPart
	closed bool
	wake   chan struct{}
	done   chan struct{}
	status string // final: complete or lost
}

func newChunkUpload(env *uploadEnv, rec string, seq int, started time.Time) (*chunkUpload, error) {
	key, err := newObjectKey()
	if err != nil {
		return nil, err
	}
	return &chunkUpload{
		env: env, rec: rec, seq: seq, key: key, startedAt: started,
		log:     env.log.With("recording", rec, "chunk", seq),
		buf:     make([]byte, 0, env.partSize),
		hash:    sha256.New(),
		abandon: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}, nil
}

// Write takes ciphertext. It fails only when the chunk was abandoned; the
// caller then stops writing to it.
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
		k := min(c.env.partSize-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == c.env.partSize {
			if err := c.flush(); err != nil {
				c.failed = err
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (c *chunkUpload) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	path, err := c.env.spool.put(c.buf, c.abandon)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.queue = append(c.queue, spooledPart{path: path, size: int64(len(c.buf))})
	c.mu.Unlock()
	c.buf = c.buf[:0]
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
	if c.failed == nil {
		if err := c.flush(); err != nil {
			c.failed = err
		}
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
		c.finish("lost", err)
		return
	}
	var uploadID string
	var parts []minio.CompletePart
	for {
		p, ok, closed := c.next()
		if !ok {
			if closed {
				break
			}
			select {
			case <-c.wake:
			case <-ctx.Done():
				c.finish("lost", ctx.Err())
				return
			}
			continue
		}
		if uploadID == "" {
			if err := retry(ctx, c.log, "create multipart upload", func(ctx context.Context) error {
				var err error
				uploadID, err = env.objs.newUpload(ctx, c.key)
				return err
			}); err != nil {
				c.finish("lost", err)
				return
			}
		}
		data, err := os.ReadFile(p.path)
		if err != nil {
			c.finish("lost", fmt.Errorf("read spooled part: %w", err))
			return
		}
		n := len(parts) + 1
		attempts := 0
		err = retry(ctx, c.log, "upload part", func(ctx context.Context) error {
			attempts++
			cp, err := env.objs.putPart(ctx, c.key, uploadID, n, data)
			if err == nil {
				parts = append(parts, cp)
			}
			return err
		})
		env.uploadRetries.Add(uint64(attempts - 1))
		if err != nil {
			c.finish("lost", err)
			return
		}
		env.partsUploaded.Add(1)
		env.spool.remove(p.path, p.size)
	}
	if c.failed != nil || len(parts) == 0 {
		if uploadID != "" {
			_ = env.objs.abort(context.WithoutCancel(ctx), c.key, uploadID)
		}
		c.finish("lost", c.failed)
		return
	}
	if err := retry(ctx, c.log, "complete multipart upload", func(ctx context.Context) error {
		err := env.objs.complete(ctx, c.key, uploadID, parts)
		if err != nil && minio.ToErrorResponse(err).Code == "NoSuchUpload" {
			// An earlier attempt completed it and the answer was lost.
			if size, serr := env.objs.Size(ctx, c.key); serr == nil && size == c.size {
				return nil
			}
		}
		return err
	}); err != nil {
		c.finish("lost", err)
		return
	}
	c.finish("complete", nil)
}

// finish records the chunk's outcome (best effort when ctx is ending: the
// sweep marks chunks that stay 'uploading' lost).
func (c *chunkUpload) finish(status string, cause error) {
	c.mu.Lock()
	c.status = status
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, p := range queue {
		c.env.spool.remove(p.path, p.size)
	}
	if cause != nil {
		c.log.Error("chunk not uploaded", "err", cause)
	}
	ended := c.endedAt
	if ended.IsZero() {
		ended = time.Now()
	}
	ch := store.Chunk{RecordingID: c.rec, Seq: c.seq, Status: status, EndedAt: &ended, DurationMS: c.durationMS}
	if status == "complete" {
		ch.Size, ch.SHA256 = c.size, c.hash.Sum(nil)
	}
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
