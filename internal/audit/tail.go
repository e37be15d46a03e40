package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openvisit/openvisit/internal/audit/anchor"
)

// AnchorLister reads head anchors back from the write-once bucket;
// *anchor.Bucket is one. A Checkpointer whose Anchor is also an
// AnchorLister checks the chain against every head anchor in the bucket,
// other processes' included, before it signs anything.
type AnchorLister interface {
	After(ctx context.Context, prefix, startAfter string, skip func(string) bool, fn func(anchor.Version) error) (string, error)
	Get(ctx context.Context, key, version string) ([]byte, error)
}

// point is one anchored entry hash.
type point struct {
	seq  int64
	hash []byte
	at   time.Time // when the anchor that names it was signed
}

// tail is what the checkpointer knows of the chain: entries up to seq were
// checked against every anchor it has read, and hash is entry seq's hash.
// Only the checkpointer's goroutine-safe methods (under its mutex) use it.
type tail struct {
	started  bool
	seq      int64
	hash     []byte
	anchored int64    // the last entry a head anchor of this process covers
	recent   [][]byte // hashes of entries after anchored up to seq (the last maxHeadHashes)
	cursor   string   // the last head-anchor key read from the bucket
	own      map[string]bool
	pending  []point  // anchored hashes past the chain head when they were read
	restores restores // restore records read from the bucket (restore.go)
	rcursor  string   // the last restore-record key read
}

// maxNamed bounds how many disagreeing entries a refusal names.
const maxNamed = 20

// advance checks the entries written since the last check against the
// anchors (the checkpointer's own, and any new ones in the bucket) and the
// chain's own links, and moves the checked point to the head. It returns
// an error wrapping ErrTampered, naming the entries, when the chain
// disagrees; then nothing moves and nothing may be signed.
func (c *Checkpointer) advance(ctx context.Context) (seq int64, head []byte, err error) {
	if err := c.p.Pool.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&seq, &head); err != nil {
		return 0, nil, fmt.Errorf("audit: read chain head: %w", err)
	}
	t := &c.tail
	if t.started && seq == t.seq && bytes.Equal(head, t.hash) {
		return seq, head, nil // nothing written since the last look
	}
	if !t.started {
		if err := c.start(ctx); err != nil {
			return 0, nil, err
		}
	}
	if err := c.readAnchors(ctx); err != nil {
		return 0, nil, err
	}
	if err := c.checkRows(ctx, seq, head); err != nil {
		return 0, nil, err
	}
	return seq, head, nil
}

// start finds where checking begins: the newest checkpoint in Postgres that
// carries this key's signature and, with a bucket, whose copy the bucket
// holds byte for byte. Rewriting or deleting Postgres checkpoints can only
// move that point back (more is checked), never past a forgery.
func (c *Checkpointer) start(ctx context.Context) error {
	rows, err := c.p.Pool.Query(ctx, `SELECT seq, head_hash, signed_at, key_id, signature, object_key, object_version
		FROM audit_checkpoints WHERE anchored_at IS NOT NULL OR $1 ORDER BY seq DESC, id DESC LIMIT 16`, c.lister == nil)
	if err != nil {
		return fmt.Errorf("audit: checkpointer start: %w", err)
	}
	type cand struct {
		cp       Checkpoint
		key, ver string
	}
	cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var x cand
		err := r.Scan(&x.cp.Seq, &x.cp.HeadHash, &x.cp.SignedAt, &x.cp.KeyID, &x.cp.Signature, &x.key, &x.ver)
		return x, err
	})
	if err != nil {
		return fmt.Errorf("audit: checkpointer start: %w", err)
	}
	pub := c.p.Key.Public().(ed25519.PublicKey)
	c.tail = tail{started: true, hash: zeroHash, own: map[string]bool{}}
	for _, x := range cands {
		if !x.cp.Valid(pub) || (c.lister != nil && !c.inBucket(ctx, x.cp, x.key, x.ver)) {
			continue
		}
		c.tail.seq, c.tail.hash, c.tail.anchored = x.cp.Seq, x.cp.HeadHash, x.cp.Seq
		c.tail.cursor = headKeyBefore(x.cp.Seq)
		break
	}
	c.log.Info("audit tail check starts", "seq", c.tail.seq)
	return nil
}

func (c *Checkpointer) inBucket(ctx context.Context, cp Checkpoint, key, version string) bool {
	if key == "" || version == "" {
		return false
	}
	body, err := c.lister.Get(ctx, key, version)
	if err != nil {
		return false
	}
	got, err := parseCheckpoint(body)
	return err == nil && got.Seq == cp.Seq && bytes.Equal(got.HeadHash, cp.HeadHash) &&
		bytes.Equal(got.Signature, cp.Signature)
}

// readAnchors adds the hashes of head anchors written since the last read
// (by any process) to the points still to check.
func (c *Checkpointer) readAnchors(ctx context.Context) error {
	if c.lister == nil {
		return nil
	}
	t := &c.tail
	pub := c.p.Key.Public().(ed25519.PublicKey)
	if err := c.readRestores(ctx, pub); err != nil {
		return err
	}
	ignored, firstIgnored := 0, ""
	last, err := c.lister.After(ctx, HeadPrefix, t.cursor, func(k string) bool { return t.own[k] },
		func(v anchor.Version) error {
			h, err := parseHead(v.Body)
			if err != nil || !h.Valid(pub) {
				// Not this key's: Verify reports it; it pins nothing.
				if ignored++; firstIgnored == "" {
					firstIgnored = v.Key
				}
				return nil
			}
			for i, x := range h.Hashes {
				if seq := h.FromSeq + int64(i); !t.restores.superseded(seq, h.SignedAt) {
					t.pending = append(t.pending, point{seq, x, h.SignedAt})
				}
			}
			return nil
		})
	if ignored > 0 {
		// Once per read, not once per object: a bucket shared with an
		// older key (or another trail) holds many.
		c.log.Warn("audit head anchors ignored: malformed or not signed by this key", "count", ignored, "first", firstIgnored)
	}
	if err != nil {
		return fmt.Errorf("audit: read head anchors: %w", err)
	}
	for k := range t.own {
		if k <= last {
			delete(t.own, k)
		}
	}
	t.cursor = last
	return nil
}

// readRestores adds the restore records written since the last read and
// drops the pending anchored hashes they supersede: those of a chain lost
// with a restored database (restore.go).
func (c *Checkpointer) readRestores(ctx context.Context, pub ed25519.PublicKey) error {
	t := &c.tail
	last, err := c.lister.After(ctx, RestorePrefix, t.rcursor, nil, func(v anchor.Version) error {
		if r, err := parseRestore(v.Body); err == nil && r.Valid(pub) && restoreKey(r) == v.Key {
			t.restores = append(t.restores, r)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: read restore records: %w", err)
	}
	t.rcursor = last
	t.pending = slices.DeleteFunc(t.pending, func(p point) bool { return t.restores.superseded(p.seq, p.at) })
	return nil
}

// checkRows walks entries from the checked point to the head: the checked
// entry must still have its hash, every later one must match its own hash
// and link to the one before, the head must be the last, and every anchored
// hash up to the head must be the chain's.
func (c *Checkpointer) checkRows(ctx context.Context, headSeq int64, head []byte) error {
	t := &c.tail
	slices.SortFunc(t.pending, func(a, b point) int { return cmp.Compare(a.seq, b.seq) })
	from := max(t.seq, 1)
	var bad []int64
	if err := c.checkOlderPoints(ctx, from, &bad); err != nil {
		return err
	}
	rows, err := c.p.Pool.Query(ctx, `SELECT `+entryColumns+` FROM audit_events
		WHERE seq >= $1 AND seq <= $2 ORDER BY seq`, from, headSeq)
	if err != nil {
		return fmt.Errorf("audit: check tail: %w", err)
	}
	defer rows.Close()
	var (
		e       Entry
		buf     []byte
		prev    = t.hash
		next    = from
		walk    = headWalk{points: t.pending}
		found   Report
		fresh   [][]byte
		problem string
	)
	for rows.Next() && problem == "" {
		if err := scanEntry(rows, &e); err != nil {
			return fmt.Errorf("audit: check tail: %w", err)
		}
		buf = e.appendCanonicalAt(buf[:0], e.Seq)
		sum := sha256.Sum256(buf)
		switch {
		case e.Seq != next:
			problem = fmt.Sprintf("entry #%d is missing", next)
		case e.Seq == t.seq:
			if !bytes.Equal(e.Hash, t.hash) {
				bad = append(bad, e.Seq)
				problem = fmt.Sprintf("entry #%d no longer has its signed hash", e.Seq)
			}
		case !bytes.Equal(sum[:], e.Hash):
			problem = fmt.Sprintf("entry #%d does not match its hash", e.Seq)
		case !bytes.Equal(e.PrevHash, prev):
			problem = fmt.Sprintf("entry #%d is not linked to entry #%d", e.Seq, e.Seq-1)
		default:
			if len(fresh) >= 2*maxHeadHashes { // a long first check: keep the last ones
				fresh = append(fresh[:0], fresh[len(fresh)-maxHeadHashes:]...)
			}
			fresh = append(fresh, append([]byte(nil), e.Hash...))
		}
		walk.check(&e, problem != "", &found)
		prev, next = append(prev[:0:0], e.Hash...), e.Seq+1
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: check tail: %w", err)
	}
	if problem == "" && (next-1 != headSeq || !bytes.Equal(prev, head)) {
		problem = fmt.Sprintf("the chain head (#%d) is not the last entry (#%d)", headSeq, next-1)
	}
	for _, f := range found.Findings {
		bad = append(bad, f.Seq)
	}
	if problem != "" || len(bad) > 0 || walk.mismatch > 0 {
		return refusal(problem, bad)
	}
	t.accept(headSeq, head, fresh)
	return nil
}

// accept moves the checked point to the head, whose new entries' hashes
// are fresh.
func (t *tail) accept(headSeq int64, head []byte, fresh [][]byte) {
	t.pending = slices.DeleteFunc(t.pending, func(p point) bool { return p.seq <= headSeq })
	t.recent = append(t.recent, fresh...)
	if n := len(t.recent); n > maxHeadHashes {
		t.recent = append(t.recent[:0:0], t.recent[n-maxHeadHashes:]...)
	}
	t.seq, t.hash = headSeq, head
}

// checkOlderPoints compares anchored hashes of entries before from (another
// process's anchors of entries this one checked already) with the chain.
func (c *Checkpointer) checkOlderPoints(ctx context.Context, from int64, bad *[]int64) error {
	var seqs []int64
	want := map[int64][][]byte{}
	for _, p := range c.tail.pending {
		if p.seq < from {
			seqs = append(seqs, p.seq)
			want[p.seq] = append(want[p.seq], p.hash)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	rows, err := c.p.Pool.Query(ctx, `SELECT seq, hash FROM audit_events WHERE seq = ANY($1)`, seqs)
	if err != nil {
		return fmt.Errorf("audit: check anchors: %w", err)
	}
	got := map[int64][]byte{}
	var s int64
	var h []byte
	if _, err := pgx.ForEachRow(rows, []any{&s, &h}, func() error { got[s] = append([]byte(nil), h...); return nil }); err != nil {
		return fmt.Errorf("audit: check anchors: %w", err)
	}
	for _, s := range slices.Compact(slices.Sorted(slices.Values(seqs))) {
		for _, h := range want[s] {
			if !bytes.Equal(h, got[s]) {
				*bad = append(*bad, s)
				break
			}
		}
	}
	return nil
}

// refusal is the error for a chain that disagrees with its anchors.
func refusal(problem string, bad []int64) error {
	var parts []string
	if problem != "" {
		parts = append(parts, problem)
	}
	if len(bad) == 0 && problem == "" {
		parts = append(parts, "the chain disagrees with its anchored hashes")
	}
	if len(bad) > 0 {
		bad = slices.Compact(slices.Sorted(slices.Values(bad)))
		names := make([]string, 0, min(len(bad), maxNamed))
		for _, s := range bad[:min(len(bad), maxNamed)] {
			names = append(names, fmt.Sprintf("#%d", s))
		}
		more := ""
		if len(bad) > maxNamed {
			more = fmt.Sprintf(" and %d more", len(bad)-maxNamed)
		}
		parts = append(parts, "entries "+strings.Join(names, ", ")+more+" were rewritten after they were anchored")
	}
	return fmt.Errorf("%w: refusing to sign: %s (run `openvisit audit verify`)", ErrTampered, strings.Join(parts, "; "))
}
