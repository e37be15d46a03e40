// Package storetest gives the domain packages' tests a migrated database.
package storetest

import (
	"testing"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/store"
)

// DB returns a DB on a fresh, migrated database (dbtest.Pool: skipped
// without PostgreSQL locally, failed in CI), closed when t ends.
func DB(t testing.TB) *store.DB {
	t.Helper()
	return store.New(dbtest.Pool(t, 4))
}
