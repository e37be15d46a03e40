package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openvisit/openvisit/internal/audit/anchor"
)

// The restore gap. A database restored from a backup holds the chain up to
// the backup's point (#N); the write-once bucket still holds the anchors of
// the entries written after it (#N+1..#M), which the restored database
// lost. Without more, verify reports the chain truncated at #N+1, and the
// chain written after the restore reuses #N+1.. with other hashes, which the
// old anchors would call rewritten — and the checkpointer would refuse to
// sign. So the restore is recorded as a fact, twice:
//
//   - a restore record, signed with the checkpoint key and written to the
//     write-once bucket (RestorePrefix): "the chain continues from #N, whose
//     hash is H; the anchors signed before me of entries after #N (up to
//     #M) belong to the lost chain";
//   - an audit entry (ActionRestore, the first entry after #N) naming the
//     backup and the lost range.
//
// Verify and the checkpointer then set aside exactly the anchors the record
// supersedes (signed before it, of entries after #N), check entry #N against
// the record's hash, and name the lost entries in the report's Restores
// instead of failing. Before the record is written (a database restored by
// hand), verify still fails and names the range as truncated. Whoever holds
// the checkpoint key can write a record — the same trust as signing
// checkpoints — and cannot remove one: every verify lists every restore.

// RestorePrefix is where restore records are written in the anchor bucket.
const RestorePrefix = "audit/restores/"

// ActionRestore is the audit entry that records a restore in the chain.
const ActionRestore = "audit.restore"

// The message an Ed25519 restore-record signature covers:
//
//	f("openvisit.audit.restore.v1") || be64(seq) || f(head_hash) || be64(signed_at_us)
//	|| be64(lost_to) || f(backup_id)
const restoreTag = "openvisit.audit.restore.v1"

// maxBackupIDLen bounds a restore record's backup ID.
const maxBackupIDLen = 128

// RestoreRecord is a signed statement that the chain was restored at
// SignedAt to end at entry Seq (hash HeadHash), and that entries Seq+1 up to
// LostTo, anchored before then, were lost with the database.
type RestoreRecord struct {
	Checkpoint        // Seq (0: an empty chain), HeadHash, SignedAt, KeyID, Signature
	LostTo     int64  // the highest entry anchored before the restore; Seq when none was lost
	BackupID   string // the backup restored (opaque)
}

func (r *RestoreRecord) message() []byte {
	b := appendField(nil, restoreTag)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = appendBytesField(b, r.HeadHash)
	b = binary.BigEndian.AppendUint64(b, uint64(r.SignedAt.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(r.LostTo))
	return appendField(b, r.BackupID)
}

// Valid reports whether r is well formed and carries pub's signature.
func (r *RestoreRecord) Valid(pub ed25519.PublicKey) bool {
	return r.Seq >= 0 && r.LostTo >= r.Seq && len(r.HeadHash) == HashSize &&
		len(r.BackupID) <= maxBackupIDLen && len(pub) == ed25519.PublicKeySize &&
		len(r.Signature) == ed25519.SignatureSize && ed25519.Verify(pub, r.message(), r.Signature)
}

// supersedes reports whether an anchor of entry seq signed at `at` belongs
// to the chain this restore replaced.
func (r *RestoreRecord) supersedes(seq int64, at time.Time) bool {
	return seq > r.Seq && at.Before(r.SignedAt)
}

func restoreKey(r RestoreRecord) string {
	return fmt.Sprintf("%s%020d-%016d.json", RestorePrefix, r.Seq, r.SignedAt.UnixMicro())
}

type restoreJSON struct {
	Format    string `json:"format"`
	Seq       int64  `json:"seq"`
	HeadHash  string `json:"head_hash"`
	SignedAt  string `json:"signed_at"`
	KeyID     string `json:"key_id"`
	LostTo    int64  `json:"lost_to"`
	BackupID  string `json:"backup_id"`
	Signature string `json:"signature"`
}

func (r *RestoreRecord) marshal() ([]byte, error) {
	return json.Marshal(restoreJSON{Format: restoreTag, Seq: r.Seq, HeadHash: hex.EncodeToString(r.HeadHash),
		SignedAt: r.SignedAt.UTC().Format(signedAtLayout), KeyID: r.KeyID, LostTo: r.LostTo,
		BackupID: r.BackupID, Signature: base64.StdEncoding.EncodeToString(r.Signature)})
}

func parseRestore(body []byte) (RestoreRecord, error) {
	if len(body) > anchor.MaxBody {
		return RestoreRecord{}, errors.New("object too large")
	}
	var j restoreJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return RestoreRecord{}, fmt.Errorf("malformed: %w", err)
	}
	if j.Format != restoreTag {
		return RestoreRecord{}, errors.New("unknown format")
	}
	r := RestoreRecord{Checkpoint: Checkpoint{Seq: j.Seq, KeyID: j.KeyID}, LostTo: j.LostTo, BackupID: j.BackupID}
	var err error
	if r.HeadHash, err = hex.DecodeString(j.HeadHash); err != nil {
		return r, errors.New("malformed head_hash")
	}
	if r.SignedAt, err = time.Parse(signedAtLayout, j.SignedAt); err != nil {
		return r, errors.New("malformed signed_at")
	}
	if r.Signature, err = base64.StdEncoding.DecodeString(j.Signature); err != nil {
		return r, errors.New("malformed signature")
	}
	return r, nil
}

// RestoreGap is one restore as verify reports it: entries LostFrom..LostTo
// (none when LostTo < LostFrom) were anchored before the restore and are
// not in the restored chain.
type RestoreGap struct {
	Seq              int64 // the restored chain's last entry at the restore
	LostFrom, LostTo int64
	SignedAt         time.Time
	BackupID         string
}

func (g RestoreGap) String() string {
	at := g.SignedAt.UTC().Format(time.RFC3339)
	if g.LostTo < g.LostFrom {
		return fmt.Sprintf("restore of backup %s at %s: chain continues from #%d; no anchored entry was lost", g.BackupID, at, g.Seq)
	}
	return fmt.Sprintf("restore of backup %s at %s: chain continues from #%d; entries #%d..#%d (anchored before the restore) were lost",
		g.BackupID, at, g.Seq, g.LostFrom, g.LostTo)
}

// RestoreBucket is what RecordRestore needs of the write-once bucket;
// *anchor.Bucket is one.
type RestoreBucket interface {
	AnchorWriter
	AnchorReader
}

// RecordRestore records that the database behind pool was just restored
// from backup backupID: it writes a signed restore record to the bucket
// (the chain's current head, and the highest entry any valid anchor names)
// and then appends an ActionRestore entry. Run it once, right after the
// restore and before anything else writes to the chain.
func RecordRestore(ctx context.Context, pool *pgxpool.Pool, key ed25519.PrivateKey, bucket RestoreBucket, backupID, actor string, now time.Time) (RestoreRecord, error) {
	if len(key) != ed25519.PrivateKeySize {
		return RestoreRecord{}, fmt.Errorf("%w: record restore", ErrNoKey)
	}
	if len(backupID) > maxBackupIDLen {
		return RestoreRecord{}, fmt.Errorf("%w: backup id", ErrInvalid)
	}
	r := RestoreRecord{Checkpoint: Checkpoint{SignedAt: now.UTC().Truncate(time.Microsecond),
		KeyID: KeyID(key.Public().(ed25519.PublicKey))}, BackupID: backupID}
	if err := pool.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&r.Seq, &r.HeadHash); err != nil {
		return r, fmt.Errorf("audit: record restore: read head: %w", err)
	}
	top, err := highestAnchored(ctx, bucket, key.Public().(ed25519.PublicKey))
	if err != nil {
		return r, err
	}
	r.LostTo = max(top, r.Seq)
	r.Signature = ed25519.Sign(key, r.message())
	body, err := r.marshal()
	if err != nil {
		return r, fmt.Errorf("audit: record restore: %w", err)
	}
	if _, err := bucket.Put(ctx, restoreKey(r), body); err != nil {
		return r, fmt.Errorf("audit: record restore: %w", err)
	}
	reason := fmt.Sprintf("restored backup %s: chain continues from #%d; no anchored entry lost", backupID, r.Seq)
	if r.LostTo > r.Seq {
		reason = fmt.Sprintf("restored backup %s: chain continues from #%d; entries #%d..#%d anchored before the restore are not in the backup",
			backupID, r.Seq, r.Seq+1, r.LostTo)
	}
	err = New(pool).Append(ctx, Event{ActorID: actor, ActorRole: "operator", Action: ActionRestore,
		ResourceType: "backup", ResourceID: backupID, Outcome: Success, Reason: reason})
	return r, err
}

// highestAnchored is the highest entry a validly signed checkpoint or head
// anchor in the bucket names (0: none).
func highestAnchored(ctx context.Context, a AnchorReader, pub ed25519.PublicKey) (int64, error) {
	var top int64
	err := a.Versions(ctx, CheckpointPrefix, func(v anchor.Version) error {
		if cp, err := parseCheckpoint(v.Body); err == nil && !v.DeleteMarker && cp.Valid(pub) {
			top = max(top, cp.Seq)
		}
		return nil
	})
	if err == nil {
		err = a.Versions(ctx, HeadPrefix, func(v anchor.Version) error {
			if h, err := parseHead(v.Body); err == nil && !v.DeleteMarker && h.Valid(pub) {
				top = max(top, h.Seq)
			}
			return nil
		})
	}
	if err != nil {
		return 0, fmt.Errorf("audit: record restore: read anchors: %w", err)
	}
	return top, nil
}

// restores is the set of restore records that verify and the checkpointer
// read from the bucket.
type restores []RestoreRecord

// superseded reports whether an anchor of entry seq signed at `at` belongs
// to a chain that a restore replaced.
func (rs restores) superseded(seq int64, at time.Time) bool {
	for i := range rs {
		if rs[i].supersedes(seq, at) {
			return true
		}
	}
	return false
}

// readRestores returns the validly signed restore records in a, and
// reports bad ones.
func readRestores(ctx context.Context, a AnchorReader, pub ed25519.PublicKey, rep *Report) (restores, error) {
	var out restores
	err := a.Versions(ctx, RestorePrefix, func(v anchor.Version) error {
		if v.DeleteMarker {
			return nil
		}
		r, err := parseRestore(v.Body)
		switch {
		case err != nil:
			rep.add(Finding{Kind: BadCheckpoint, Seq: r.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: %v", v.Key, v.VersionID, err)})
		case !r.Valid(pub):
			rep.add(Finding{Kind: BadCheckpoint, Seq: r.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: malformed or signature does not verify (key %s)", v.Key, v.VersionID, r.KeyID)})
		case restoreKey(r) != v.Key:
			rep.add(Finding{Kind: BadCheckpoint, Seq: r.Seq, Source: SourceBucket,
				Detail: fmt.Sprintf("%s version %s: signed restore record stored under another name", v.Key, v.VersionID)})
		default:
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: restore records: %w", err)
	}
	return out, nil
}

// setAside removes from cps and points what the restores supersede, adds
// each live restore's pin of its entry to cps, and returns the gaps.
func (rs restores) setAside(cps []sourcedCheckpoint, points []point) ([]sourcedCheckpoint, []point, []RestoreGap) {
	gaps := make([]RestoreGap, len(rs))
	for i, r := range rs {
		gaps[i] = RestoreGap{Seq: r.Seq, LostFrom: r.Seq + 1, LostTo: r.LostTo, SignedAt: r.SignedAt, BackupID: r.BackupID}
	}
	widen := func(seq int64, at time.Time) {
		for i := range rs {
			if rs[i].supersedes(seq, at) {
				gaps[i].LostTo = max(gaps[i].LostTo, seq)
			}
		}
	}
	keptCps := cps[:0]
	for _, cp := range cps {
		if rs.superseded(cp.Seq, cp.SignedAt) {
			widen(cp.Seq, cp.SignedAt)
			continue
		}
		keptCps = append(keptCps, cp)
	}
	for _, r := range rs {
		if r.Seq > 0 && !rs.superseded(r.Seq, r.SignedAt) {
			keptCps = append(keptCps, sourcedCheckpoint{r.Checkpoint, SourceBucket})
		}
	}
	keptPts := points[:0]
	for _, p := range points {
		if rs.superseded(p.seq, p.at) {
			widen(p.seq, p.at)
			continue
		}
		keptPts = append(keptPts, p)
	}
	return keptCps, keptPts, gaps
}

// describeGaps is the report's text for the restores.
func describeGaps(gaps []RestoreGap) string {
	var b strings.Builder
	for _, g := range gaps {
		fmt.Fprintf(&b, "  %s\n", g)
	}
	return b.String()
}
