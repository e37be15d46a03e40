// Package storetest gives the domain packages' tests a migrated database.
package storetest

import (
	"context"
	"testing"

	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
)

// DB returns a DB on a fresh, migrated database (testenv.Postgres: skipped
// without PostgreSQL locally, failed in CI), closed when t ends.
func DB(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testenv.Postgres(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return store.New(pool)
}
