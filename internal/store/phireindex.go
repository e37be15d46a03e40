package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/phi"
)

// The blind-index key replacement (`openvisit phi reindex`, docs/DESIGN.md
// decision 13), run on suspected compromise of the index key: a new index
// key is made and new writes use it at once; every patient's email, date
// of birth and name tokens are recomputed from the decrypted fields under
// it, ReindexBatch patients per transaction, each committed; searches
// meanwhile compute their tokens under every stored index key. Once no row
// names an older key, the older keys are deleted. A run that stops
// (crash, ^C) is resumed by running it again: it picks the newest key and
// redoes only the rows that do not name it.

// ReindexBatch is how many patients one transaction of the re-index rewrites.
const ReindexBatch = 500

// Audit actions of the re-index (actor: the operator).
const (
	ActionIndexKeyReindex = "phi.index_key.reindex"
	ActionIndexKeyRetire  = "phi.index_key.retire"
)

// retireAttempts bounds the re-index rounds when a write under an old key
// lands between the last batch and the retirement (a process that listed
// the keys just before the new one was made).
const retireAttempts = 3

// ReindexResult is what a re-index run did.
type ReindexResult struct {
	Key      int32   // the index key every patient is indexed under now
	Patients int     // patients this run re-indexed
	Retired  []int32 // the older index keys deleted
}

// ReindexPatients replaces the blind-index key (or resumes a replacement
// under way), re-indexing batch patients per transaction; progress (may be
// nil) is called after each committed batch with this run's total so far.
// It stops at the first error; run again, it goes on from there.
func ReindexPatients(ctx context.Context, db *DB, actor string, batch int, progress func(done int)) (ReindexResult, error) {
	key, err := db.PHI().BeginIndexKey(ctx)
	if err != nil {
		return ReindexResult{}, fmt.Errorf("store: reindex: %w", err)
	}
	res := ReindexResult{Key: key.ID}
	if err := db.audit.Append(ctx, indexKeyEvent(actor, ActionIndexKeyReindex, []int32{key.ID}, "re-index under this key")); err != nil {
		return res, fmt.Errorf("store: reindex: %w", err)
	}
	for range retireAttempts {
		if err := reindexAll(ctx, db, key, batch, &res, progress); err != nil {
			return res, err
		}
		res.Retired, err = retireOldIndexKeys(ctx, db, key, actor)
		if !errors.Is(err, phi.ErrIndexKeyInUse) {
			break
		}
	}
	if err != nil {
		return res, fmt.Errorf("store: reindex: %w", err)
	}
	return res, nil
}

// reindexAll re-indexes batch by batch until no patient is left.
func reindexAll(ctx context.Context, db *DB, key phi.IndexKey, batch int, res *ReindexResult, progress func(int)) error {
	for {
		n, err := reindexBatch(ctx, db, key, batch)
		if err != nil {
			return fmt.Errorf("store: reindex: %w", err)
		}
		if n == 0 {
			return nil
		}
		res.Patients += n
		if progress != nil {
			progress(res.Patients)
		}
	}
}

// reindexBatch rewrites, in one transaction, the indexes of up to batch
// patients that are not indexed under key, from their decrypted fields.
// Rows the plaintext migration has not sealed yet have no indexes; it
// writes theirs under the current key itself.
func reindexBatch(ctx context.Context, db *DB, key phi.IndexKey, batch int) (int, error) {
	var n int
	err := db.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+patientColumns+` FROM patients
			WHERE name_ct IS NOT NULL AND bidx_key_id IS DISTINCT FROM $1
			ORDER BY id LIMIT $2 FOR UPDATE`, key.ID, batch)
		if err != nil {
			return err
		}
		list, err := collectPatients(ctx, cipherOf(tx), rows)
		if err != nil {
			return err
		}
		for _, p := range list {
			if err := indexPatient(ctx, tx, key, p); err != nil {
				return err
			}
		}
		n = len(list)
		return nil
	})
	return n, err
}

// retireOldIndexKeys deletes the index keys older than key, with its audit
// entry in the same transaction; none to delete: no entry.
func retireOldIndexKeys(ctx context.Context, db *DB, key phi.IndexKey, actor string) ([]int32, error) {
	keys, err := db.PHI().IndexKeys(ctx)
	if err != nil || len(keys) < 2 {
		return nil, err
	}
	var retired []int32
	ev := indexKeyEvent(actor, ActionIndexKeyRetire, nil, "no patient row names it; its wrapped copy is deleted")
	err = db.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		retired, err = phi.RetireIndexKeys(ctx, tx, key.ID)
		ev.ResourceID = joinIDs(retired)
		return err
	})
	return retired, err
}

func indexKeyEvent(actor, action string, keys []int32, reason string) audit.Event {
	return audit.Event{ActorID: actor, ActorRole: "operator", Action: action, ResourceType: "phi_index_key",
		ResourceID: joinIDs(keys), Outcome: audit.Success, Reason: reason}
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

// IndexStatus is the blind-index keys and the re-index's progress.
type IndexStatus struct {
	Keys []phi.IndexKeyUse // oldest first; the last is the one new writes use
	Left int64             // sealed patients not yet indexed under the last key
}

// Reindexing reports whether a re-index is under way (older keys remain).
func (s IndexStatus) Reindexing() bool { return len(s.Keys) > 1 }

// PHIIndexStatus reads the index keys and how many patients the re-index
// has left.
func PHIIndexStatus(ctx context.Context, db DBTX) (IndexStatus, error) {
	keys, err := phi.IndexKeyUses(ctx, db)
	if err != nil || len(keys) == 0 {
		return IndexStatus{Keys: keys}, err
	}
	st := IndexStatus{Keys: keys}
	err = db.QueryRow(ctx, `SELECT count(*) FROM patients WHERE name_ct IS NOT NULL AND bidx_key_id IS DISTINCT FROM $1`,
		keys[len(keys)-1].ID).Scan(&st.Left)
	if err != nil {
		return IndexStatus{}, fmt.Errorf("store: phi index status: %w", err)
	}
	return st, nil
}
