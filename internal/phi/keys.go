package phi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openvisit/openvisit/internal/keys"
)

// Data keys (docs/DESIGN.md decision 13). A data key is a random 256-bit
// key wrapped by the keyring's primary KEK and stored in phi_data_keys;
// the wrap's associated data names its purpose and period ("phi|patients|
// 2026-12"), so a wrapped key copied onto another row does not open.
//
// Granularity: one data key per table per calendar month (UTC), made on
// first use and kept unwrapped in memory for the life of the process. A
// month bounds what one key protects (a leaked data key opens one table's
// fields for one month), without a key row per patient; the wrapped keys
// are few (tables × months), so re-wrapping them after a KEK rotation is
// instant, and crypto-shredding a period is deleting one row.
//
// A blind-index key has purpose "index" and period its generation ("1",
// "2", …). It does not change with the month: an index must give the same
// token for the same value whenever it was written. It is replaced only by
// a re-index (indexkey.go).

// KeyringSource gives the current keyring (keys.KeyringFile reloads its
// file when an operator rotates or retires a KEK).
type KeyringSource interface {
	Keyring() (*keys.Keyring, error)
}

// StaticKeyring is a KeyringSource of one in-memory keyring (tests, tools).
type StaticKeyring struct{ K *keys.Keyring }

// Keyring returns the keyring.
func (s StaticKeyring) Keyring() (*keys.Keyring, error) { return s.K, nil }

// DBTX is what phi needs of PostgreSQL: a pool (data keys are written in
// transactions of their own, never in a caller's, so a rolled-back change
// cannot take a key that a committed row already uses) or a transaction
// (the rewrap).
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Errors of the key store.
var (
	ErrNoKeyring = errors.New("phi: no keyring: PHI cannot be encrypted or read")
	ErrDataKey   = errors.New("phi: data key unknown or does not unwrap")
)

// IndexPurpose is the purpose of the blind-index key.
const IndexPurpose = "index"

type dataKey struct {
	id  int32
	key []byte
}

// keyStore loads, creates and caches data keys.
type keyStore struct {
	db      DBTX
	keyring KeyringSource
	now     func() time.Time

	mu       sync.Mutex
	byID     map[int32][]byte
	byName   map[string]dataKey // purpose|period
	indexIDs []int32            // the index keys at the last listing
}

func newKeyStore(db DBTX, kr KeyringSource, now func() time.Time) *keyStore {
	return &keyStore{db: db, keyring: kr, now: now, byID: map[int32][]byte{}, byName: map[string]dataKey{}}
}

// wrapLabel is what a data key's wrap is bound to.
func wrapLabel(purpose, period string) string { return "phi|" + purpose + "|" + period }

// period is the data-key period of t: its calendar month in UTC.
func period(t time.Time) string { return t.UTC().Format("2006-01") }

func (ks *keyStore) ring() (*keys.Keyring, error) {
	if ks.keyring == nil {
		return nil, ErrNoKeyring
	}
	kr, err := ks.keyring.Keyring()
	if err != nil {
		return nil, fmt.Errorf("phi: keyring: %w", err)
	}
	if kr == nil {
		return nil, ErrNoKeyring
	}
	return kr, nil
}

// current returns the data key for purpose in period, creating it on first
// use. Two processes racing to create it both end up with the one stored.
func (ks *keyStore) current(ctx context.Context, purpose, per string) (dataKey, error) {
	name := purpose + "|" + per
	ks.mu.Lock()
	k, ok := ks.byName[name]
	ks.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := ks.load(ctx, `WHERE purpose = $1 AND period = $2`, purpose, per)
	if errors.Is(err, pgx.ErrNoRows) {
		if err = ks.create(ctx, purpose, per); err == nil {
			k, err = ks.load(ctx, `WHERE purpose = $1 AND period = $2`, purpose, per)
		}
	}
	if err != nil {
		return dataKey{}, err
	}
	ks.mu.Lock()
	ks.byName[name] = k
	ks.mu.Unlock()
	return k, nil
}

// byKeyID returns data key id (to open a value sealed under it).
func (ks *keyStore) byKeyID(ctx context.Context, id int32) ([]byte, error) {
	ks.mu.Lock()
	key, ok := ks.byID[id]
	ks.mu.Unlock()
	if ok {
		return key, nil
	}
	k, err := ks.load(ctx, `WHERE id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrDataKey, id)
	}
	return k.key, err
}

// load reads and unwraps one data key, caching it by ID.
func (ks *keyStore) load(ctx context.Context, where string, args ...any) (dataKey, error) {
	var k dataKey
	var purpose, per, kek string
	var wrapped []byte
	err := ks.db.QueryRow(ctx, `SELECT id, purpose, period, kek_id, wrapped FROM phi_data_keys `+where, args...).
		Scan(&k.id, &purpose, &per, &kek, &wrapped)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return dataKey{}, err
		}
		return dataKey{}, fmt.Errorf("phi: load data key: %w", err)
	}
	kr, err := ks.ring()
	if err != nil {
		return dataKey{}, err
	}
	if k.key, err = kr.Unwrap(kek, wrapped, wrapLabel(purpose, per)); err != nil {
		return dataKey{}, fmt.Errorf("%w: %d: %w", ErrDataKey, k.id, err)
	}
	ks.mu.Lock()
	ks.byID[k.id] = k.key
	ks.mu.Unlock()
	return k, nil
}

// create stores a fresh data key for purpose and period, unless one is
// there already.
func (ks *keyStore) create(ctx context.Context, purpose, per string) error {
	kr, err := ks.ring()
	if err != nil {
		return err
	}
	key := make([]byte, keys.DataKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("phi: data key: %w", err)
	}
	defer clear(key)
	kek, wrapped, err := kr.Wrap(key, wrapLabel(purpose, per))
	if err != nil {
		return fmt.Errorf("phi: wrap data key: %w", err)
	}
	_, err = ks.db.Exec(ctx, `INSERT INTO phi_data_keys (purpose, period, kek_id, wrapped, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (purpose, period) DO NOTHING`, purpose, per, kek, wrapped, ks.now())
	if err != nil {
		return fmt.Errorf("phi: store data key: %w", err)
	}
	return nil
}

// Rewrap re-wraps every data key that is not under the keyring's primary
// KEK with the primary, in one transaction of db's (the keys are few: one
// per table per month). Values sealed under the keys are not touched. It
// returns how many keys moved and, per old KEK, how many came from it.
func Rewrap(ctx context.Context, tx DBTX, kr *keys.Keyring) (int, map[string]int, error) {
	primary := kr.Primary()
	rows, err := tx.Query(ctx, `SELECT id, purpose, period, kek_id, wrapped FROM phi_data_keys
		WHERE kek_id <> $1 ORDER BY id FOR UPDATE`, primary)
	if err != nil {
		return 0, nil, fmt.Errorf("phi: keys to rewrap: %w", err)
	}
	type row struct {
		id                   int32
		purpose, period, kek string
		wrapped              []byte
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var k row
		err := r.Scan(&k.id, &k.purpose, &k.period, &k.kek, &k.wrapped)
		return k, err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("phi: keys to rewrap: %w", err)
	}
	from := map[string]int{}
	for _, k := range list {
		newKEK, wrapped, err := kr.Rewrap(k.kek, k.wrapped, wrapLabel(k.purpose, k.period))
		if err != nil {
			return 0, nil, fmt.Errorf("phi: rewrap data key %d: %w", k.id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE phi_data_keys SET kek_id = $2, wrapped = $3 WHERE id = $1`, k.id, newKEK, wrapped); err != nil {
			return 0, nil, fmt.Errorf("phi: rewrap data key %d: %w", k.id, err)
		}
		from[k.kek]++
	}
	return len(list), from, nil
}

// KEKUsage counts the data keys wrapped under each KEK.
func KEKUsage(ctx context.Context, db DBTX) (map[string]int64, error) {
	rows, err := db.Query(ctx, `SELECT kek_id, count(*) FROM phi_data_keys GROUP BY kek_id`)
	if err != nil {
		return nil, fmt.Errorf("phi: kek usage: %w", err)
	}
	out := map[string]int64{}
	var kek string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&kek, &n}, func() error { out[kek] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("phi: kek usage: %w", err)
	}
	return out, nil
}
