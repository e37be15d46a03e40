package db

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/openvisit/openvisit/internal/testenv"
)

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		wantErr string
	}{
		{"gap", fstest.MapFS{"m/0001_a.sql": {}, "m/0003_c.sql": {}}, "without gaps"},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": {}, "m/01_b.sql": {}}, "share version"},
		{"bad name", fstest.MapFS{"m/first.sql": {}}, "NNNN_description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadMigrations(tt.files, "m")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	ms, err := loadMigrations(fstest.MapFS{"m/0002_b.sql": {Data: []byte("B")}, "m/0001_a.sql": {Data: []byte("A")}, "m/README": {}}, "m")
	if err != nil || len(ms) != 2 || ms[0].SQL != "A" || ms[1].Version != 2 {
		t.Fatalf("ordered load = %+v, %v", ms, err)
	}
}

func TestMigrateFreshAndIdempotent(t *testing.T) {
	ctx := context.Background()
	pool, err := Open(ctx, testenv.Postgres(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	all, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}

	// Several processes may start at once; the advisory lock serializes them
	// and exactly one applies each migration.
	var wg sync.WaitGroup
	counts := make([]int, 3)
	errs := make([]error, 3)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	total := 0
	for i := range counts {
		if errs[i] != nil {
			t.Fatalf("concurrent Migrate: %v", errs[i])
		}
		total += counts[i]
	}
	if total != len(all) {
		t.Fatalf("applied %d migrations in all, want %d", total, len(all))
	}
	if n, err := Migrate(ctx, pool); err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
	for _, table := range []string{"visits", "participants", "join_tokens", "sfu_nodes", "audit_events", "demo_links"} {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing after migrate (%v)", table, err)
		}
	}
}

func TestMigrateRefusesNewerDatabase(t *testing.T) {
	ctx := context.Background()
	pool, err := Open(ctx, testenv.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future.sql')"); err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(ctx, pool); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("Migrate on a newer database = %v, want refusal", err)
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	pool, err := Open(ctx, testenv.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ms := []Migration{
		{Version: 1, Name: "0001_ok.sql", SQL: "CREATE TABLE t1 (x int)"},
		{Version: 2, Name: "0002_bad.sql", SQL: "CREATE TABLE t2 (x int); SELECT no_such_function()"},
	}
	n, err := apply(ctx, pool, ms)
	if err == nil || n != 1 || !strings.Contains(err.Error(), "0002_bad.sql") {
		t.Fatalf("apply = %d, %v; want 1 and an error naming 0002_bad.sql", n, err)
	}
	var t2 bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('t2') IS NOT NULL").Scan(&t2); err != nil || t2 {
		t.Fatalf("failed migration left table t2 behind (%v)", err)
	}
}
