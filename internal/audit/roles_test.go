package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/testenv"
)

// setupRoles runs internal/db/roles.sql — the file operators run — against
// the database at dbURL (as its superuser), with the role names replaced by
// owner and app. Roles are cluster-wide: they are dropped when t ends, after
// the test database (which holds their privileges) is gone.
func setupRoles(t *testing.T, adminURL, dbURL, owner, app string) {
	t.Helper()
	ctx := context.Background()
	sql, err := os.ReadFile("../db/roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("openvisit_owner", owner, "openvisit_app", app).Replace(string(sql))
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, s); err != nil {
		t.Fatalf("roles.sql: %v", err)
	}
}

func withUser(t *testing.T, dbURL, user string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

// The application's role may only read and append audit rows: the
// privilege is gone, not just refused by the trigger.
func TestAuditAppRoleCannotModify(t *testing.T) {
	ctx := context.Background()
	ownerPool, appPool := ownerAndAppPools(t)

	// Appending works, both ways, and keeps the chain.
	l := New(appPool)
	appendN(t, l, 3)
	err := pgx.BeginFunc(ctx, appPool, func(tx pgx.Tx) error {
		return AppendTx(ctx, tx, Event{Action: "test.tx", Outcome: Success})
	})
	if err != nil {
		t.Fatalf("AppendTx as app: %v", err)
	}
	key := newKey(t)
	if _, err := mustCheckpointer(t, appPool, key, nil).CheckpointNow(ctx); err != nil {
		t.Fatalf("checkpoint as app: %v", err)
	}
	if rep := verifyOK(t, appPool, pubOf(key)); rep.LastSeq != 4 {
		t.Fatalf("last seq = %d, want 4", rep.LastSeq)
	}

	checkAuditChangesDenied(t, appPool)

	// Ordinary DML elsewhere works.
	for _, stmt := range []string{
		"INSERT INTO sfu_nodes (id, url) VALUES ('n1', 'https://n1')",
		"UPDATE sfu_nodes SET load = 1 WHERE id = 'n1'",
		"DELETE FROM sfu_nodes WHERE id = 'n1'",
	} {
		if _, err := appPool.Exec(ctx, stmt); err != nil {
			t.Errorf("%s as app: %v", stmt, err)
		}
	}

	// The owner holds the privileges but the triggers still refuse.
	if _, err := ownerPool.Exec(ctx, "DELETE FROM audit_events"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("DELETE as owner: err = %v, want append-only refusal", err)
	}
}

// ownerAndAppPools makes fresh owner and app roles with roles.sql (dropped
// when t ends), migrates a test database as the owner, and returns a pool
// for each role.
func ownerAndAppPools(t *testing.T) (ownerPool, appPool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	admin := testenv.PostgresAdminURL(t)
	var b [5]byte
	_, _ = rand.Read(b[:])
	owner, app := "ov_test_owner_"+hex.EncodeToString(b[:]), "ov_test_app_"+hex.EncodeToString(b[:])
	// Registered before the database exists, so it runs after it is dropped.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop roles: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+app+", "+owner); err != nil {
			t.Errorf("drop roles: %v", err)
		}
	})
	dbURL := testenv.Postgres(t)
	setupRoles(t, admin, dbURL, owner, app)

	// Migrations run as the owner role.
	ownerPool, err := db.Open(ctx, withUser(t, dbURL, owner), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ownerPool.Close)
	if _, err := db.Migrate(ctx, ownerPool); err != nil {
		t.Fatalf("migrate as owner: %v", err)
	}

	appPool, err = db.Open(ctx, withUser(t, dbURL, app), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(appPool.Close)
	return ownerPool, appPool
}

// checkAuditChangesDenied: changing audit rows as the app is refused by
// privilege (SQLSTATE 42501 "permission denied"), before any trigger runs,
// and the app holds no UPDATE/DELETE/TRUNCATE on audit_events.
func checkAuditChangesDenied(t *testing.T, appPool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	for _, stmt := range []string{
		"UPDATE audit_events SET outcome = 'failure'",
		"DELETE FROM audit_events",
		"TRUNCATE audit_events",
		"UPDATE audit_checkpoints SET seq = 1",
		"DELETE FROM audit_checkpoints",
		"TRUNCATE audit_checkpoints",
		"UPDATE audit_chain_head SET seq = 1",
		"DELETE FROM audit_chain_head",
		"INSERT INTO audit_chain_head (singleton, seq, hash) VALUES (false, 0, '\\x00')",
		"ALTER TABLE audit_events DISABLE TRIGGER USER",
		"SET session_replication_role = replica",
	} {
		_, err := appPool.Exec(ctx, stmt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" && !strings.Contains(pe.Message, "must be owner") {
			t.Errorf("%s as app: err = %v, want permission denied", stmt, err)
		} else if strings.Contains(pe.Message, "append-only") {
			t.Errorf("%s as app: refused by the trigger only, the privilege is still granted", stmt)
		}
	}
	var priv bool
	if err := appPool.QueryRow(ctx, `SELECT has_table_privilege('audit_events', 'UPDATE')
		OR has_table_privilege('audit_events', 'DELETE') OR has_table_privilege('audit_events', 'TRUNCATE')`).Scan(&priv); err != nil || priv {
		t.Errorf("app role holds UPDATE/DELETE/TRUNCATE on audit_events (%v)", err)
	}
}
