package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"

	"github.com/openvisit/openvisit/internal/audit/anchor"
)

// headWalk checks the chain against the entry hashes that head anchors
// pinned, as Verify walks the rows in seq order. Where an entry's hash
// differs from its anchored hash, it tells an entry whose own fields were
// rewritten (named) from one that only hashes differently because an
// earlier entry changed and the chain was recomputed after it (not named):
// it rehashes the entry's stored fields over the anchored hash of the entry
// before it.
type headWalk struct {
	points   []point // sorted by seq; one per anchored entry and anchor
	next     int
	okSeq    int64  // the last entry that matched an anchored hash
	prevSeq  int64  // the entry whose anchored hash prev is
	prev     []byte // anchored hash of entry prevSeq
	buf      []byte
	mismatch int // anchored hashes that differ from the chain's
}

// readHeads returns every anchored entry hash of the validly signed head
// anchors in a, and reports overwritten keys and bad versions.
func readHeads(ctx context.Context, a AnchorReader, pub ed25519.PublicKey, rep *Report) ([]point, error) {
	var out []point
	versions := map[string]int{}
	seqOf := map[string]int64{}
	err := a.Versions(ctx, HeadPrefix, func(v anchor.Version) error {
		versions[v.Key]++
		if v.DeleteMarker {
			return nil
		}
		h, err := parseHead(v.Body)
		seqOf[v.Key] = h.Seq
		switch {
		case err != nil:
			rep.add(Finding{Kind: BadCheckpoint, Seq: h.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: %v", v.Key, v.VersionID, err)})
			return nil
		case !h.Valid(pub):
			rep.add(Finding{Kind: BadCheckpoint, Seq: h.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: malformed or signature does not verify (key %s)", v.Key, v.VersionID, h.KeyID)})
			return nil
		case headKey(h) != v.Key:
			rep.add(Finding{Kind: BadCheckpoint, Seq: h.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: signed head anchor stored under another name", v.Key, v.VersionID)})
		}
		rep.HeadAnchors++
		for i, x := range h.Hashes {
			out = append(out, point{h.FromSeq + int64(i), x, h.SignedAt})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: head anchors: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(versions)) {
		if versions[k] < 2 {
			continue
		}
		rep.add(Finding{Kind: AnchorOverwritten, Seq: seqOf[k], Source: SourceBucket,
			Detail: fmt.Sprintf("%s has %d versions; every signed version is checked", k, versions[k])})
	}
	slices.SortStableFunc(out, func(a, b point) int { return cmp.Compare(a.seq, b.seq) })
	return out, nil
}

// check compares entry e (bad: already reported for itself) with the
// anchored hashes at its seq.
func (w *headWalk) check(e *Entry, bad bool, rep *Report) {
	var anchored []byte
	for ; w.next < len(w.points) && w.points[w.next].seq <= e.Seq; w.next++ {
		p := w.points[w.next]
		if p.seq < e.Seq {
			continue // its entry is missing: reported as deleted
		}
		if anchored == nil {
			anchored = p.hash
		}
		if bytes.Equal(p.hash, e.Hash) {
			w.okSeq = e.Seq
			continue
		}
		w.mismatch++
		if !bad {
			w.report(e, p.hash, rep)
		}
	}
	w.prevSeq, w.prev = e.Seq, anchored
}

func (w *headWalk) report(e *Entry, anchored []byte, rep *Report) {
	if w.prev != nil && w.prevSeq == e.Seq-1 {
		x := *e
		x.PrevHash = w.prev
		w.buf = x.appendCanonicalAt(w.buf[:0], e.Seq)
		if sum := sha256.Sum256(w.buf); bytes.Equal(sum[:], anchored) {
			return // its own fields are as anchored: only the chain was recomputed
		}
		rep.add(Finding{Kind: Rewritten, Seq: e.Seq, Source: SourceBucket,
			Detail: fmt.Sprintf("entry rewritten after a head anchor pinned it (chain hash %s, anchored %s)", short(e.Hash), short(anchored))})
		return
	}
	rep.add(Finding{Kind: Rewritten, Seq: e.Seq, Source: SourceBucket,
		Detail: fmt.Sprintf("chain hash %s, head anchor %s: an entry in #%d..#%d was rewritten", short(e.Hash), short(anchored), w.okSeq+1, e.Seq)})
}

// lastSeq is the highest anchored entry.
func (w *headWalk) lastSeq() int64 {
	if len(w.points) == 0 {
		return 0
	}
	return w.points[len(w.points)-1].seq
}
