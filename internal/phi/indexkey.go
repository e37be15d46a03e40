package phi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Replacing the blind-index key (docs/DESIGN.md decision 13), on suspected
// compromise: BeginIndexKey makes a new generation, which new writes use at
// once (IndexKeys lists the keys at every use); a batched re-index
// (store.ReindexPatients) rewrites every patient's tokens under it while
// searches match under every key still stored; RetireIndexKeys then deletes
// the older keys' wrapped copies, so their tokens left in old backups or a
// reader's notes mean nothing. The foreign keys from patients.bidx_key_id
// and patient_name_tokens.key_id make the retirement fail, rather than
// strand a row, while any row still names an old key.

// ErrIndexKeyInUse: an old index key is still named by some row.
var ErrIndexKeyInUse = errors.New("phi: an old index key is still in use; re-index again")

// indexKeys lists and unwraps the index keys, oldest first, making
// generation 1 when there is none, and drops from the cache any index key
// that has gone since the last listing.
func (ks *keyStore) indexKeys(ctx context.Context) ([]IndexKey, error) {
	ids, err := ks.indexKeyIDs(ctx)
	if err == nil && len(ids) == 0 {
		if err = ks.create(ctx, IndexPurpose, "1"); err == nil {
			ids, err = ks.indexKeyIDs(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	ks.forgetIndexKeys(ids)
	out := make([]IndexKey, 0, len(ids))
	for _, id := range ids {
		key, err := ks.byKeyID(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, IndexKey{ID: id, key: key})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no index key", ErrDataKey)
	}
	return out, nil
}

func (ks *keyStore) indexKeyIDs(ctx context.Context) ([]int32, error) {
	rows, err := ks.db.Query(ctx, `SELECT id FROM phi_data_keys WHERE purpose = $1 ORDER BY id`, IndexPurpose)
	if err != nil {
		return nil, fmt.Errorf("phi: index keys: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("phi: index keys: %w", err)
	}
	return ids, nil
}

// forgetIndexKeys drops the unwrapped copies of index keys that were listed
// before and are not in ids (retired), so the process holds them no longer.
func (ks *keyStore) forgetIndexKeys(ids []int32) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, id := range ks.indexIDs {
		if !slices.Contains(ids, id) {
			clear(ks.byID[id])
			delete(ks.byID, id)
		}
	}
	ks.indexIDs = ids
}

// BeginIndexKey starts replacing the index key and returns the key the
// re-index writes under: a new generation, wrapped by the primary KEK, when
// there is one index key; the newest when a re-index is already under way
// (two or more keys: an interrupted run resumes, it does not start over).
func (c *Cipher) BeginIndexKey(ctx context.Context) (IndexKey, error) {
	keys, err := c.IndexKeys(ctx)
	if err != nil || len(keys) > 1 {
		return last(keys), err
	}
	var gen int
	err = c.ks.db.QueryRow(ctx, `SELECT coalesce(max(period::integer), 0) FROM phi_data_keys WHERE purpose = $1`,
		IndexPurpose).Scan(&gen)
	if err != nil {
		return IndexKey{}, fmt.Errorf("phi: index key generation: %w", err)
	}
	if err := c.ks.create(ctx, IndexPurpose, strconv.Itoa(gen+1)); err != nil {
		return IndexKey{}, err
	}
	keys, err = c.IndexKeys(ctx)
	return last(keys), err
}

func last(keys []IndexKey) IndexKey {
	if len(keys) == 0 {
		return IndexKey{}
	}
	return keys[len(keys)-1]
}

// RetireIndexKeys deletes the index keys older than keep, in db (the
// caller's transaction, which also writes the audit entry), and returns
// their IDs. While a row still names one of them it deletes nothing and
// returns ErrIndexKeyInUse.
func RetireIndexKeys(ctx context.Context, db DBTX, keep int32) ([]int32, error) {
	rows, err := db.Query(ctx, `DELETE FROM phi_data_keys WHERE purpose = $1 AND id < $2 RETURNING id`, IndexPurpose, keep)
	var ids []int32
	if err == nil {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return nil, ErrIndexKeyInUse
	}
	if err != nil {
		return nil, fmt.Errorf("phi: retire index keys: %w", err)
	}
	return ids, nil
}

// IndexKeyUse is one index key as `openvisit phi status` shows it.
type IndexKeyUse struct {
	ID         int32
	Generation string
	KEK        string
	CreatedAt  time.Time
	Patients   int64 // patients whose indexes it made
}

// IndexKeyUses lists the index keys, oldest first, with how many patients
// each one indexes.
func IndexKeyUses(ctx context.Context, db DBTX) ([]IndexKeyUse, error) {
	rows, err := db.Query(ctx, `SELECT k.id, k.period, k.kek_id, k.created_at,
		(SELECT count(*) FROM patients p WHERE p.bidx_key_id = k.id)
		FROM phi_data_keys k WHERE k.purpose = $1 ORDER BY k.id`, IndexPurpose)
	if err != nil {
		return nil, fmt.Errorf("phi: index key use: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[IndexKeyUse])
	if err != nil {
		return nil, fmt.Errorf("phi: index key use: %w", err)
	}
	return out, nil
}
