package backup

import (
	"strings"
	"testing"
)

// TestLibpqURL: the password leaves the command line for PGPASSWORD, and
// pgx's pool settings, which libpq would refuse, are dropped.
func TestLibpqURL(t *testing.T) {
	u, env, err := libpqURL("postgres://app:s3cret@db.example:5432/openvisit?sslmode=verify-full&pool_max_conns=4")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, "s3cret") || strings.Contains(u, "pool_") || !strings.Contains(u, "sslmode=verify-full") ||
		!strings.HasPrefix(u, "postgres://app@db.example:5432/openvisit") {
		t.Errorf("url = %s", u)
	}
	if len(env) != 1 || env[0] != "PGPASSWORD=s3cret" {
		t.Errorf("env = %v", env)
	}
	if _, _, err := libpqURL("postgres://%zz"); err == nil || strings.Contains(err.Error(), "%zz") {
		t.Errorf("malformed url: %v (must not echo the url)", err)
	}
}

// TestToolErrorsKeepNoRowData: a failing COPY's CONTEXT line, which quotes
// the row, is not carried into the error.
func TestToolErrorsKeepNoRowData(t *testing.T) {
	stderr := "pg_restore: error: COPY failed for table \"patients\": ERROR:  invalid input syntax for type date: \"Jane\"\n" +
		"CONTEXT:  COPY patients, line 1: \"Jane Doe\t1970-01-01\"\n" +
		"pg_restore: error: CONTEXT:  COPY patients, line 1: \"Jane Doe\"\n"
	got := toolErrors("pg_restore", stderr)
	if strings.Contains(got, "Jane") || !strings.Contains(got, "COPY failed for table") {
		t.Errorf("toolErrors = %q", got)
	}
}
