package phi_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/phi"
)

// TestEveryColumnClassified: every column of every table of the migrated
// schema is declared in phi.Columns exactly once, and nothing is declared
// that the schema lacks — so a migration that adds a column fails here
// until the column is classified as PHI or not.
func TestEveryColumnClassified(t *testing.T) {
	pool := dbtest.Pool(t, 2)
	rows, err := pool.Query(context.Background(), `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ table, column string }
	schema, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
		var k key
		err := r.Scan(&k.table, &k.column)
		return k, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(schema) < 100 {
		t.Fatalf("the schema has %d columns: not the migrated schema", len(schema))
	}
	declared := map[key]int{}
	for _, c := range phi.Columns {
		declared[key{c.Table, c.Column}]++
	}
	inSchema := map[key]bool{}
	for _, k := range schema {
		inSchema[k] = true
		switch declared[k] {
		case 0:
			t.Errorf("%s.%s is not classified in phi.Columns (PHI or not, and why)", k.table, k.column)
		case 1:
		default:
			t.Errorf("%s.%s is declared %d times", k.table, k.column, declared[k])
		}
	}
	for k := range declared {
		if !inSchema[k] {
			t.Errorf("phi.Columns declares %s.%s, which the schema does not have", k.table, k.column)
		}
	}
}

// TestDeclarationConsistent: each encrypted field names a ciphertext
// column declared as such; every column says why it is not PHI (or why
// PHI stays plaintext); PHI kinds say where they are stored.
func TestDeclarationConsistent(t *testing.T) {
	for _, c := range phi.Columns {
		name := c.Table + "." + c.Column
		if c.Encrypted() {
			ct, ok := phi.Lookup(c.Table, c.Cipher)
			if !ok || ct.Kind != phi.Ciphertext {
				t.Errorf("%s: its ciphertext column %s is not declared as ciphertext", name, c.Cipher)
			}
			if !c.Kind.IsPHI() {
				t.Errorf("%s is encrypted but its kind %q is not PHI", name, c.Kind)
			}
		}
		if c.Kind.IsPHI() && c.Stored == "" {
			t.Errorf("%s is PHI but does not say where it is stored", name)
		}
		if c.Kind.IsPHI() && !c.Encrypted() && c.Why == "" {
			t.Errorf("%s is PHI kept in plaintext without a reason", name)
		}
		if !c.Kind.IsPHI() && c.Why == "" {
			t.Errorf("%s is not PHI without a reason", name)
		}
	}
	for _, c := range phi.Encrypted {
		if got, _ := phi.Lookup(c.Table, c.Column); !got.Encrypted() {
			t.Errorf("%s.%s is in phi.Encrypted but Columns does not declare it encrypted", c.Table, c.Column)
		}
	}
}
