// Package storetest gives the domain packages' tests a migrated database.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/phi"
	"github.com/openvisit/openvisit/internal/store"
)

// DB returns a DB on a fresh, migrated database (dbtest.Pool: skipped
// without PostgreSQL locally, failed in CI), closed when t ends, with a
// fresh in-memory keyring for its PHI data keys.
func DB(t testing.TB) *store.DB {
	t.Helper()
	kr, err := keys.NewKeyring(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return store.New(dbtest.Pool(t, 4), phi.StaticKeyring{K: kr})
}

// User creates a user, or fails t.
func User(t testing.TB, db *store.DB, email, name, role string) store.User {
	t.Helper()
	u, err := store.CreateUser(context.Background(), db, email, name, role)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Patient creates a patient record, or fails t.
func Patient(t testing.TB, db *store.DB, p store.Patient) store.Patient {
	t.Helper()
	out, err := store.CreatePatient(context.Background(), db, p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// MediaNode registers media node id (at a test URL), or fails t.
func MediaNode(t testing.TB, db *store.DB, id string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO sfu_nodes (id, url) VALUES ($1, 'wss://media.test/sfu/ws')`, id); err != nil {
		t.Fatal(err)
	}
}
