package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/openvisit/openvisit/internal/audit/anchor"
)

// FindingKind says what Verify found wrong. The values are stable: reports
// and alerts match on them.
type FindingKind string

const (
	// Edited: the entry's fields no longer match its hash.
	Edited FindingKind = "edited"
	// Deleted: sequence numbers are missing (Seq is the first).
	Deleted FindingKind = "deleted"
	// Reordered: the entry at Seq was written at another position.
	Reordered FindingKind = "reordered"
	// BrokenLink: the entry's prev_hash is not the previous entry's hash
	// although both entries match their own hashes (a row replaced with a
	// recomputed hash, or rows inserted outside the chain).
	BrokenLink FindingKind = "broken_link"
	// Truncated: a signed checkpoint or the chain head names entries past
	// the last one (Seq is the first missing).
	Truncated FindingKind = "truncated"
	// Rewritten: the chain is self-consistent but differs from a signed
	// checkpoint at Seq: it was recomputed after a change. From the bucket's
	// head anchors (source "bucket"): entry Seq's fields changed after a head
	// anchor pinned it, or (when the anchor does not pin the entry before)
	// an entry up to Seq did.
	Rewritten FindingKind = "rewritten"
	// BadCheckpoint: a checkpoint is malformed or its signature does not
	// verify with the key given.
	BadCheckpoint FindingKind = "bad_checkpoint"
	// AnchorOverwritten: a checkpoint object in the bucket has more than one
	// version (or a delete marker). Object Lock kept the original, which is
	// still checked, but someone tried.
	AnchorOverwritten FindingKind = "anchor_overwritten"
	// HeadMismatch: the chain-head row disagrees with the last entry.
	HeadMismatch FindingKind = "head_mismatch"
)

// Sources of a finding.
const (
	SourceChain    = "chain"
	SourcePostgres = "postgres"
	SourceBucket   = "bucket"
)

// Finding is one problem Verify found.
type Finding struct {
	Kind   FindingKind
	Seq    int64  // the entry (or checkpoint) concerned
	Source string // chain, postgres, bucket, or several joined with "+"
	Detail string // opaque IDs and hashes only
}

func (f Finding) String() string {
	return fmt.Sprintf("#%d %s (%s): %s", f.Seq, f.Kind, f.Source, f.Detail)
}

// maxFindings bounds a report; the rest are counted in Omitted.
const maxFindings = 1000

// Report is what Verify found.
type Report struct {
	Entries        int64  // entries read
	LastSeq        int64  // the last entry's seq (0: empty)
	LastHash       []byte // the last entry's stored hash
	DBCheckpoints  int    // validly signed checkpoints from Postgres
	BucketVersions int    // validly signed checkpoint versions from the bucket(s)
	HeadAnchors    int    // validly signed head-anchor versions from the bucket(s)
	// Restores are the restores recorded in the bucket(s), each with the
	// entries it lost (restore.go): facts, not findings.
	Restores []RestoreGap
	Findings []Finding
	Omitted  int // findings past maxFindings, not listed
}

// OK reports whether nothing was found.
func (r *Report) OK() bool { return len(r.Findings) == 0 && r.Omitted == 0 }

// Has reports whether r holds a finding of kind k at seq.
func (r *Report) Has(k FindingKind, seq int64) bool {
	for _, f := range r.Findings {
		if f.Kind == k && f.Seq == seq {
			return true
		}
	}
	return false
}

func (r *Report) add(f Finding) {
	if n := len(r.Findings); n > 0 {
		last := &r.Findings[n-1]
		if last.Kind == f.Kind && last.Seq == f.Seq && last.Detail == f.Detail {
			if !strings.Contains(last.Source, f.Source) {
				last.Source += "+" + f.Source
			}
			return
		}
	}
	if len(r.Findings) >= maxFindings {
		r.Omitted++
		return
	}
	r.Findings = append(r.Findings, f)
}

// Beginner starts a transaction; *pgxpool.Pool and *pgx.Conn are ones.
type Beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// reorderWindow is how far Verify looks for the position an entry that
// fails its hash was written at.
const reorderWindow = 1024

type sourcedCheckpoint struct {
	Checkpoint
	source string
}

// Verify recomputes the hash chain and checks it against the signed
// checkpoints in Postgres and in every anchor (the bucket copies are the ones
// a database superuser cannot rewrite). Every checkpoint must carry pub's
// signature. Rows are streamed in seq order in one read-only snapshot; only
// checkpoints are held in memory. A non-nil error means verification could
// not run; tampering is reported in the Report.
func Verify(ctx context.Context, db Beginner, pub ed25519.PublicKey, anchors ...AnchorReader) (Report, error) {
	var rep Report
	if len(pub) != ed25519.PublicKeySize {
		return rep, fmt.Errorf("%w: verify", ErrNoKey)
	}
	// Anchors are read before the snapshot is taken: every checkpoint found
	// then names entries the snapshot holds.
	cps, walk, err := readBuckets(ctx, anchors, pub, &rep)
	if err != nil {
		return rep, err
	}

	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	dbcps, err := readDBCheckpoints(ctx, tx, pub, &rep)
	if err != nil {
		return rep, err
	}
	rep.DBCheckpoints = len(dbcps)
	cps = append(cps, dbcps...)
	slices.SortStableFunc(cps, func(a, b sourcedCheckpoint) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.source, b.source))
	})

	var headSeq int64
	var headHash []byte
	err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&headSeq, &headHash)
	headMissing := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !headMissing {
		return rep, fmt.Errorf("audit: verify: read head: %w", err)
	}

	if err := verifyRows(ctx, tx, cps, &walk, &rep); err != nil {
		return rep, err
	}

	// Checkpoints (or the head) past the last entry: the tail was cut.
	var lost []string
	var maxSeq int64
	for _, cp := range cps {
		if cp.Seq > rep.LastSeq {
			lost = append(lost, cp.source)
			maxSeq = max(maxSeq, cp.Seq)
		}
	}
	if s := walk.lastSeq(); s > rep.LastSeq {
		lost = append(lost, SourceBucket)
		maxSeq = max(maxSeq, s)
	}
	if headSeq > rep.LastSeq {
		lost = append(lost, SourceChain)
		maxSeq = max(maxSeq, headSeq)
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		rep.add(Finding{Kind: Truncated, Seq: rep.LastSeq + 1, Source: strings.Join(slices.Compact(lost), "+"),
			Detail: fmt.Sprintf("checkpoint or head names #%d, chain ends at #%d", maxSeq, rep.LastSeq)})
	} else if headMissing {
		rep.add(Finding{Kind: HeadMismatch, Seq: rep.LastSeq, Source: SourceChain, Detail: "chain head row missing"})
	} else if headSeq != rep.LastSeq || (headSeq == 0 && !bytes.Equal(headHash, zeroHash)) ||
		(headSeq > 0 && !bytes.Equal(headHash, rep.LastHash)) {
		rep.add(Finding{Kind: HeadMismatch, Seq: rep.LastSeq, Source: SourceChain,
			Detail: fmt.Sprintf("chain head records #%d %s", headSeq, short(headHash))})
	}
	return rep, nil
}

// readBuckets reads the signed checkpoints and head anchors of every
// anchor bucket.
func readBuckets(ctx context.Context, anchors []AnchorReader, pub ed25519.PublicKey, rep *Report) ([]sourcedCheckpoint, headWalk, error) {
	var cps []sourcedCheckpoint
	var walk headWalk
	var rs restores
	for _, a := range anchors {
		got, err := readRestores(ctx, a, pub, rep)
		if err != nil {
			return nil, walk, err
		}
		rs = append(rs, got...)
	}
	for _, a := range anchors {
		got, err := readAnchors(ctx, a, pub, rep)
		if err != nil {
			return nil, walk, err
		}
		cps = append(cps, got...)
		heads, err := readHeads(ctx, a, pub, rep)
		if err != nil {
			return nil, walk, err
		}
		walk.points = append(walk.points, heads...)
	}
	rep.BucketVersions = len(cps)
	cps, walk.points, rep.Restores = rs.setAside(cps, walk.points)
	slices.SortStableFunc(walk.points, func(a, b point) int { return cmp.Compare(a.seq, b.seq) })
	return cps, walk, nil
}

func verifyRows(ctx context.Context, tx pgx.Tx, cps []sourcedCheckpoint, walk *headWalk, rep *Report) error {
	rows, err := tx.Query(ctx, `SELECT `+entryColumns+` FROM audit_events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var (
		e        Entry
		buf      []byte
		expected = int64(1)
		prevHash = zeroHash
		prevBad  = false    // the previous entry already has a finding
		okSeq    = int64(0) // last seq where a checkpoint matched
		next     = 0        // index into cps
	)
	for rows.Next() {
		if err := scanEntry(rows, &e); err != nil {
			return fmt.Errorf("audit: verify: seq %d: %w", e.Seq, err)
		}
		rep.Entries++
		bad := false
		if e.Seq > expected {
			detail := fmt.Sprintf("entry #%d missing", expected)
			if e.Seq-1 > expected {
				detail = fmt.Sprintf("entries #%d to #%d missing", expected, e.Seq-1)
			}
			rep.add(Finding{Kind: Deleted, Seq: expected, Source: SourceChain, Detail: detail})
			prevBad = true
		} else if e.Seq < expected {
			rep.add(Finding{Kind: Edited, Seq: e.Seq, Source: SourceChain, Detail: "sequence number out of range"})
			bad = true
		}

		buf = e.appendCanonicalAt(buf[:0], e.Seq)
		sum := sha256.Sum256(buf)
		switch {
		case bad:
		case !bytes.Equal(sum[:], e.Hash):
			bad = true
			if orig, ok := originalSeq(&e, buf); ok {
				rep.add(Finding{Kind: Reordered, Seq: e.Seq, Source: SourceChain,
					Detail: fmt.Sprintf("holds the entry written as #%d", orig)})
			} else {
				rep.add(Finding{Kind: Edited, Seq: e.Seq, Source: SourceChain,
					Detail: "fields do not match the entry's hash"})
			}
		case !bytes.Equal(e.PrevHash, prevHash) && !prevBad:
			bad = true
			rep.add(Finding{Kind: BrokenLink, Seq: e.Seq, Source: SourceChain,
				Detail: fmt.Sprintf("prev_hash %s, previous entry's hash %s", short(e.PrevHash), short(prevHash))})
		}

		next, okSeq = checkCheckpoints(&e, cps, next, okSeq, rep)
		walk.check(&e, bad, rep)
		prevBad = bad
		prevHash = append(prevHash[:0:0], e.Hash...)
		expected = e.Seq + 1
		rep.LastSeq = e.Seq
		rep.LastHash = prevHash
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	return nil
}

// checkCheckpoints compares e with the signed checkpoints cps[next:] that
// name its seq (or an earlier one, whose entry is missing and reported as
// deleted), reporting each that signed another hash as rewritten. It
// returns the index of the next checkpoint and the last seq where one
// matched.
func checkCheckpoints(e *Entry, cps []sourcedCheckpoint, next int, okSeq int64, rep *Report) (int, int64) {
	okBefore := okSeq
	for ; next < len(cps) && cps[next].Seq <= e.Seq; next++ {
		cp := cps[next]
		if cp.Seq < e.Seq {
			continue // its entry is missing: reported as deleted
		}
		if bytes.Equal(cp.HeadHash, e.Hash) {
			okSeq = cp.Seq
			continue
		}
		detail := fmt.Sprintf("chain hash %s, signed %s", short(e.Hash), short(cp.HeadHash))
		if okBefore > 0 {
			detail += fmt.Sprintf("; last matching checkpoint #%d", okBefore)
		}
		rep.add(Finding{Kind: Rewritten, Seq: cp.Seq, Source: cp.source, Detail: detail})
	}
	return next, okSeq
}

// originalSeq looks for the seq near e.Seq at which e's fields hash to its
// stored hash: e was moved there from another position. buf is scratch.
func originalSeq(e *Entry, buf []byte) (int64, bool) {
	for d := int64(1); d <= reorderWindow; d++ {
		for _, s := range [2]int64{e.Seq - d, e.Seq + d} {
			if s <= 0 {
				continue
			}
			buf = e.appendCanonicalAt(buf[:0], s)
			if sum := sha256.Sum256(buf); bytes.Equal(sum[:], e.Hash) {
				return s, true
			}
		}
	}
	return 0, false
}

func readDBCheckpoints(ctx context.Context, tx pgx.Tx, pub ed25519.PublicKey, rep *Report) ([]sourcedCheckpoint, error) {
	rows, err := tx.Query(ctx, `SELECT id, seq, head_hash, signed_at, key_id, signature FROM audit_checkpoints ORDER BY seq, id`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: checkpoints: %w", err)
	}
	var out []sourcedCheckpoint
	for rows.Next() {
		var id int64
		var cp Checkpoint
		if err := rows.Scan(&id, &cp.Seq, &cp.HeadHash, &cp.SignedAt, &cp.KeyID, &cp.Signature); err != nil {
			return nil, fmt.Errorf("audit: verify: checkpoints: %w", err)
		}
		if !cp.Valid(pub) {
			rep.add(Finding{Kind: BadCheckpoint, Seq: cp.Seq, Source: SourcePostgres,
				Detail: fmt.Sprintf("checkpoint row %d: signature does not verify (key %s)", id, cp.KeyID)})
			continue
		}
		out = append(out, sourcedCheckpoint{cp, SourcePostgres})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify: checkpoints: %w", err)
	}
	return out, nil
}

// readAnchors returns every validly signed checkpoint version in a, and
// reports overwritten keys and bad versions.
func readAnchors(ctx context.Context, a AnchorReader, pub ed25519.PublicKey, rep *Report) ([]sourcedCheckpoint, error) {
	var out []sourcedCheckpoint
	versions := map[string]int{}
	seqOf := map[string]int64{}
	err := a.Versions(ctx, CheckpointPrefix, func(v anchor.Version) error {
		versions[v.Key]++
		if v.DeleteMarker {
			return nil
		}
		cp, err := parseCheckpoint(v.Body)
		if err != nil {
			rep.add(Finding{Kind: BadCheckpoint, Seq: cp.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: %v", v.Key, v.VersionID, err)})
			return nil
		}
		if s, ok := seqOf[v.Key]; !ok || cp.Seq < s {
			seqOf[v.Key] = cp.Seq
		}
		if !cp.Valid(pub) {
			rep.add(Finding{Kind: BadCheckpoint, Seq: cp.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: signature does not verify (key %s)", v.Key, v.VersionID, cp.KeyID)})
			return nil
		}
		if checkpointKey(cp) != v.Key {
			rep.add(Finding{Kind: BadCheckpoint, Seq: cp.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: signed checkpoint stored under another name", v.Key, v.VersionID)})
		}
		out = append(out, sourcedCheckpoint{cp, SourceBucket})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: anchors: %w", err)
	}
	keys := make([]string, 0, len(versions))
	for k, n := range versions {
		if n > 1 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		rep.add(Finding{Kind: AnchorOverwritten, Seq: seqOf[k], Source: SourceBucket,
			Detail: fmt.Sprintf("%s has %d versions; every signed version is checked", k, versions[k])})
	}
	return out, nil
}

func short(h []byte) string {
	if len(h) > 6 {
		h = h[:6]
	}
	return hex.EncodeToString(h) + "…"
}

// VerifyCommand runs `openvisit audit verify`: it verifies the trail against
// the Postgres checkpoints and, when s3 is not nil, against the checkpoints
// anchored in bucket, prints a report to w, and returns an error wrapping
// ErrTampered when anything was found.
func VerifyCommand(ctx context.Context, pool *pgxpool.Pool, s3 *minio.Client, bucket string, pub ed25519.PublicKey, w io.Writer) error {
	var anchors []AnchorReader
	if s3 != nil {
		b, err := anchor.New(anchor.Params{Client: s3, Bucket: bucket})
		if err != nil {
			return err
		}
		anchors = append(anchors, b)
	} else {
		fmt.Fprintln(w, "warning: no anchor bucket: checking Postgres checkpoints only, which a database superuser could rewrite")
	}
	rep, err := Verify(ctx, pool, pub, anchors...)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "audit trail: %d entries, head #%d", rep.Entries, rep.LastSeq)
	if rep.LastSeq > 0 {
		fmt.Fprintf(w, " (%s)", hex.EncodeToString(rep.LastHash))
	}
	fmt.Fprintf(w, "\nsigned checkpoints checked: %d in Postgres, %d in bucket %q (key %s); head anchors: %d\n",
		rep.DBCheckpoints, rep.BucketVersions, bucket, KeyID(pub), rep.HeadAnchors)
	if len(rep.Restores) > 0 {
		fmt.Fprintf(w, "restores recorded in the bucket: %d\n%s", len(rep.Restores), describeGaps(rep.Restores))
	}
	if rep.OK() {
		fmt.Fprintln(w, "OK: the chain is intact and matches every signed checkpoint and head anchor")
		return nil
	}
	fmt.Fprintf(w, "TAMPERING DETECTED: %d finding(s)\n", len(rep.Findings)+rep.Omitted)
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "  #%-10d %-18s %-16s %s\n", f.Seq, f.Kind, f.Source, f.Detail)
	}
	if rep.Omitted > 0 {
		fmt.Fprintf(w, "  … and %d more\n", rep.Omitted)
	}
	return fmt.Errorf("%w: %d finding(s)", ErrTampered, len(rep.Findings)+rep.Omitted)
}
