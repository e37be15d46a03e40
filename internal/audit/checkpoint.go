package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openvisit/openvisit/internal/audit/anchor"
)

// CheckpointPrefix is where checkpoints are written in the anchor bucket.
const CheckpointPrefix = "audit/checkpoints/"

// AnchorWriter writes a checkpoint object once; *anchor.Bucket is one.
type AnchorWriter interface {
	Put(ctx context.Context, key string, body []byte) (versionID string, err error)
}

// AnchorReader lists every version of the anchored objects; *anchor.Bucket
// is one.
type AnchorReader interface {
	Versions(ctx context.Context, prefix string, fn func(anchor.Version) error) error
}

// CheckpointerParams configures a Checkpointer.
type CheckpointerParams struct {
	Pool *pgxpool.Pool
	Key  ed25519.PrivateKey
	// Anchor is the write-once bucket; nil: Postgres only (not for
	// production). When it is also an AnchorLister (*anchor.Bucket is),
	// the chain is checked against every head anchor in the bucket.
	Anchor       AnchorWriter
	Interval     time.Duration // signed checkpoints; zero: 5 minutes
	HeadInterval time.Duration // head anchors; zero: 2 seconds
	Logger       *slog.Logger
	// OnFailure is called with every checkpoint or head anchor that could
	// not be written, and with every refusal to sign a chain that disagrees
	// with its anchors (the same error at most once per Interval).
	OnFailure func(error)
	Now       func() time.Time // nil: time.Now
}

// Checkpointer signs the chain head and records it: a head anchor in the
// write-once bucket at most HeadInterval after entries are written, and a
// signed checkpoint in Postgres and in the bucket every Interval. Before it
// signs anything it checks the entries written since its last look against
// every anchor (see tail.go) and refuses a chain that disagrees.
//
// Lifecycle: NewCheckpointer, then Run in one goroutine until its context
// ends; CheckpointNow and AnchorHead may be called at any time, from any
// goroutine.
type Checkpointer struct {
	p      CheckpointerParams
	log    *slog.Logger
	lister AnchorLister

	mu         sync.Mutex // one checkpoint or head anchor at a time; guards the rest
	tail       tail
	lastFail   string
	lastFailAt time.Time
}

// NewCheckpointer checks p and returns a Checkpointer.
func NewCheckpointer(p CheckpointerParams) (*Checkpointer, error) {
	if p.Pool == nil {
		return nil, errors.New("audit: checkpointer: no pool")
	}
	if len(p.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: checkpointer", ErrNoKey)
	}
	if p.Interval <= 0 {
		p.Interval = 5 * time.Minute
	}
	if p.HeadInterval <= 0 {
		p.HeadInterval = 2 * time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	log := p.Logger.With("component", "audit.checkpointer", "key", KeyID(p.Key.Public().(ed25519.PublicKey)))
	if p.Anchor == nil {
		log.Warn("no anchor bucket: checkpoints are kept in Postgres only, where a database superuser could rewrite them")
	}
	lister, _ := p.Anchor.(AnchorLister)
	return &Checkpointer{p: p, log: log, lister: lister}, nil
}

// Run writes a checkpoint now and then every Interval, and a head anchor
// every HeadInterval in which entries were written, until ctx ends. An idle
// tick costs one single-row SELECT. Failures are logged and passed to
// OnFailure; Run goes on.
func (c *Checkpointer) Run(ctx context.Context) {
	_, _ = c.CheckpointNow(ctx)
	heads := time.NewTicker(c.p.HeadInterval)
	defer heads.Stop()
	cps := time.NewTicker(c.p.Interval)
	defer cps.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-heads.C:
			_, _ = c.AnchorHead(ctx)
		case <-cps.C:
			_, _ = c.CheckpointNow(ctx)
		}
	}
}

// AnchorHead checks the entries written since the last look and, when there
// are new ones and a bucket, writes one signed head anchor covering them.
// It returns the anchor (zero when nothing was written).
func (c *Checkpointer) AnchorHead(ctx context.Context) (HeadAnchor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, err := c.anchorHead(ctx)
	c.report(err)
	return h, err
}

func (c *Checkpointer) anchorHead(ctx context.Context) (HeadAnchor, error) {
	if _, _, err := c.advance(ctx); err != nil {
		return HeadAnchor{}, err
	}
	return c.putHead(ctx)
}

// putHead anchors the checked entries that no head anchor of this process
// covers yet (the last maxHeadHashes of them).
func (c *Checkpointer) putHead(ctx context.Context) (HeadAnchor, error) {
	t := &c.tail
	if c.p.Anchor == nil || t.seq <= t.anchored || len(t.recent) == 0 {
		return HeadAnchor{}, nil
	}
	h := signHead(c.p.Key, t.seq-int64(len(t.recent))+1, t.recent, c.p.Now())
	body, err := h.marshal()
	if err != nil {
		return h, fmt.Errorf("audit: head anchor %d: %w", h.Seq, err)
	}
	key := headKey(h)
	if _, err := c.p.Anchor.Put(ctx, key, body); err != nil {
		return h, fmt.Errorf("audit: head anchor %d: %w", h.Seq, err)
	}
	t.anchored, t.recent = h.Seq, nil
	if c.lister != nil {
		t.own[key] = true
	}
	return h, nil
}

// report logs and passes on a failure, the same one at most once per
// Interval (a refusal repeats on every tick until someone acts).
func (c *Checkpointer) report(err error) {
	if err == nil {
		c.lastFail = ""
		return
	}
	now, msg := c.p.Now(), err.Error()
	if msg == c.lastFail && now.Sub(c.lastFailAt) < c.p.Interval {
		return
	}
	c.lastFail, c.lastFailAt = msg, now
	c.log.Error("audit checkpoint failed", "err", err)
	if c.p.OnFailure != nil {
		c.p.OnFailure(err)
	}
}

// CheckpointNow checks the chain against its anchors, anchors the head,
// then signs it and records the checkpoint. It returns the checkpoint (zero
// when the chain is empty). When the head was already checkpointed, it
// returns that checkpoint and writes nothing. A chain that disagrees with
// any anchor is refused with an error wrapping ErrTampered, and nothing is
// signed. A failure to write either copy is returned, logged and passed to
// OnFailure; the other copy is still written.
func (c *Checkpointer) CheckpointNow(ctx context.Context) (Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, err := c.checkpoint(ctx)
	c.report(err)
	return cp, err
}

func (c *Checkpointer) checkpoint(ctx context.Context) (Checkpoint, error) {
	seq, head, err := c.advance(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	if seq == 0 {
		return Checkpoint{}, nil
	}
	_, headErr := c.putHead(ctx)
	var last Checkpoint
	err = c.p.Pool.QueryRow(ctx, `SELECT seq, head_hash, signed_at, key_id, signature FROM audit_checkpoints
		WHERE seq = $1 AND head_hash = $2 AND (anchored_at IS NOT NULL OR $3)
		ORDER BY id DESC LIMIT 1`, seq, head, c.p.Anchor == nil).
		Scan(&last.Seq, &last.HeadHash, &last.SignedAt, &last.KeyID, &last.Signature)
	switch {
	case err == nil:
		return last, headErr
	case !errors.Is(err, pgx.ErrNoRows):
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: read last: %w", err)
	}
	cp, err := c.record(ctx, signCheckpoint(c.p.Key, seq, head, c.p.Now()))
	return cp, errors.Join(headErr, err)
}

// record writes cp to the bucket and to Postgres.
func (c *Checkpointer) record(ctx context.Context, cp Checkpoint) (Checkpoint, error) {
	seq := cp.Seq
	var errs []error
	var key, version string
	var anchoredAt *time.Time
	if c.p.Anchor != nil {
		key = checkpointKey(cp)
		body, err := json.Marshal(toJSON(cp))
		if err == nil {
			version, err = c.p.Anchor.Put(ctx, key, body)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("audit: checkpoint %d: anchor: %w", seq, err))
			key = ""
		} else {
			now := c.p.Now().UTC()
			anchoredAt = &now
		}
	}
	_, err := c.p.Pool.Exec(ctx, `INSERT INTO audit_checkpoints
		(seq, head_hash, signature, key_id, signed_at, anchored_at, object_key, object_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		cp.Seq, cp.HeadHash, cp.Signature, cp.KeyID, cp.SignedAt, anchoredAt, key, version)
	if err != nil {
		errs = append(errs, fmt.Errorf("audit: checkpoint %d: record: %w", seq, err))
	}
	return cp, errors.Join(errs...)
}

// checkpointKey names a checkpoint's object: unique per signature, so that a
// second version of any key is never the checkpointer's doing.
func checkpointKey(cp Checkpoint) string {
	return fmt.Sprintf("%s%020d-%d.json", CheckpointPrefix, cp.Seq, cp.SignedAt.UnixMicro())
}

// checkpointJSON is a checkpoint as stored in the bucket.
type checkpointJSON struct {
	Format    string `json:"format"`
	Seq       int64  `json:"seq"`
	HeadHash  string `json:"head_hash"` // hex
	SignedAt  string `json:"signed_at"` // RFC 3339, UTC, microseconds
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // base64 (standard, padded)
}

const signedAtLayout = "2006-01-02T15:04:05.000000Z"

func toJSON(cp Checkpoint) checkpointJSON {
	return checkpointJSON{
		Format:    checkpointTag,
		Seq:       cp.Seq,
		HeadHash:  hex.EncodeToString(cp.HeadHash),
		SignedAt:  cp.SignedAt.UTC().Format(signedAtLayout),
		KeyID:     cp.KeyID,
		Signature: base64.StdEncoding.EncodeToString(cp.Signature),
	}
}

// parseCheckpoint decodes a bucket object; it does not check the signature.
func parseCheckpoint(body []byte) (Checkpoint, error) {
	if len(body) > anchor.MaxBody {
		return Checkpoint{}, errors.New("object too large")
	}
	var j checkpointJSON
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Checkpoint{}, fmt.Errorf("malformed: %w", err)
	}
	if j.Format != checkpointTag {
		return Checkpoint{}, errors.New("unknown format")
	}
	head, err := hex.DecodeString(j.HeadHash)
	if err != nil {
		return Checkpoint{}, errors.New("malformed head_hash")
	}
	at, err := time.Parse(signedAtLayout, j.SignedAt)
	if err != nil {
		return Checkpoint{}, errors.New("malformed signed_at")
	}
	sig, err := base64.StdEncoding.DecodeString(j.Signature)
	if err != nil {
		return Checkpoint{}, errors.New("malformed signature")
	}
	return Checkpoint{Seq: j.Seq, HeadHash: head, SignedAt: at, KeyID: j.KeyID, Signature: sig}, nil
}
