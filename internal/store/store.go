// Package store reads and writes OpenVisit's relational data with pgx: one
// file per aggregate (users, sessions, break-glass, alerts, visits). It
// knows SQL, not HTTP; the domain packages above it decide policy and
// write each change with its audit entry through DB.Change.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/phi"
)

// Errors every aggregate returns.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
	// ErrAudit wraps the failure of a change's audit entry (DB.Change):
	// the change was rolled back with it.
	ErrAudit = errors.New("store: audit entry not written")
)

// DBTX is what store functions need: a pool or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DB is the one handle on OpenVisit's database: it owns the pool, runs
// transactions, appends audit entries through the audit log that shares
// the pool, and seals and opens PHI fields with its cipher (internal/phi).
// Store functions take a DBTX, which a *DB is, so callers never reach for
// the pool; a transaction begun by Tx or Change carries the cipher too, so
// a store function reads and writes PHI through either. A raw pool or
// transaction has no cipher: PHI functions refuse it (phi.ErrNoKeyring).
// Lifecycle: New on an open pool; the caller that opened the pool closes
// it after the last use of the DB.
type DB struct {
	pool  *pgxpool.Pool
	audit *audit.Log
	phi   *phi.Cipher
}

// New returns the DB on pool. keyring wraps the PHI data keys (the
// recording keyring); nil: PHI cannot be read or written.
func New(pool *pgxpool.Pool, keyring phi.KeyringSource) *DB {
	return &DB{pool: pool, audit: audit.New(pool), phi: phi.New(phi.Params{DB: pool, Keyring: keyring})}
}

// PHI is the field cipher.
func (db *DB) PHI() *phi.Cipher { return db.phi }

// phiTx is a transaction of a DB: it carries the DB's cipher.
type phiTx struct {
	pgx.Tx
	c *phi.Cipher
}

func (t phiTx) PHI() *phi.Cipher { return t.c }

// cipherOf is the cipher db carries (nil for a raw pool or transaction).
func cipherOf(db DBTX) *phi.Cipher {
	if h, ok := db.(interface{ PHI() *phi.Cipher }); ok {
		return h.PHI()
	}
	return nil
}

// Pool is the pool itself, for the packages that keep their own SQL and
// connections (the audit chain, LISTEN loops, the alert engine).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Audit is the audit log for entries written outside a change (reads,
// refusals): a change writes its entry in its own transaction (Change).
func (db *DB) Audit() *audit.Log { return db.audit }

// Exec runs sql on the pool.
func (db *DB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return db.pool.Exec(ctx, sql, args...)
}

// Query runs sql on the pool.
func (db *DB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return db.pool.Query(ctx, sql, args...)
}

// QueryRow runs sql on the pool.
func (db *DB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return db.pool.QueryRow(ctx, sql, args...)
}

// Tx runs fn in a transaction.
func (db *DB) Tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return fn(phiTx{tx, db.phi}) })
}

// Change runs change in one transaction and appends *ev, as change left it,
// in the same transaction: a change and its audit entry commit together or
// not at all. Every service changes PHI through here, so no path can change
// it without leaving its trace. change may fill in ev (patient, resource).
func (db *DB) Change(ctx context.Context, ev *audit.Event, change func(pgx.Tx) error) error {
	return db.Tx(ctx, func(tx pgx.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		if err := audit.AppendTx(ctx, tx, *ev); err != nil {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
		return nil
	})
}

// queryStrings runs sql, whose rows are one text column each, and returns
// them; a failure reads "store: <op>: …".
func queryStrings(ctx context.Context, db DBTX, op, sql string, args ...any) ([]string, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return out, nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
