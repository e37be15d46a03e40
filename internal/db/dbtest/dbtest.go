// Package dbtest gives a test a migrated database of its own on the test
// PostgreSQL (internal/testenv): the setup every package that tests against
// real SQL needs, in one place.
package dbtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/testenv"
)

// Pool opens a pool of at most conns connections to a fresh database with
// every migration applied, closed when the test ends. Without PostgreSQL
// the test skips (or fails under CI, as testenv decides).
func Pool(t testing.TB, conns int32) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), testenv.Postgres(t), conns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}
