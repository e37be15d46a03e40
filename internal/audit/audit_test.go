package audit

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/testenv"
)

func newPool(t *testing.T) *pgxpool.Pool {
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
	return pool
}

func TestAppendAndRead(t *testing.T) {
	ctx := context.Background()
	l := New(newPool(t))
	long := strings.Repeat("é", 1000) // multi-byte: truncation must keep UTF-8 valid
	if err := l.Append(ctx, Event{Action: "test.read", Outcome: Success, VisitID: "v1", ActorID: "u1", UserAgent: long}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, Event{Action: "test.read", Outcome: Denied, VisitID: "v2"}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Recent(ctx, "v1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ActorID != "u1" || got[0].Outcome != Success {
		t.Fatalf("Recent(v1) = %+v", got)
	}
	if n := len(got[0].UserAgent); n > maxUserAgentLen {
		t.Errorf("user agent stored with %d bytes, limit %d", n, maxUserAgentLen)
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	ctx := context.Background()
	l := New(newPool(t))
	for name, e := range map[string]Event{
		"no action":   {Outcome: Success},
		"bad outcome": {Action: "x", Outcome: "maybe"},
	} {
		if err := l.Append(ctx, e); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// The trigger refuses changes even to a superuser connection; the role
// split that also removes the privilege is a later migration.
func TestAuditTableIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	if err := New(pool).Append(ctx, Event{Action: "test.write", Outcome: Success}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"UPDATE audit_events SET outcome = 'failure'",
		"DELETE FROM audit_events",
		"TRUNCATE audit_events",
	} {
		if _, err := pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM audit_events").Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit rows = %d (%v), want 1", n, err)
	}
}
