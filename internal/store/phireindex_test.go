package store_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/phi"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
)

// TestBlindIndexKeyReplacement: `openvisit phi reindex` replaces the
// blind-index key. Interrupted after its first batch, every patient is
// still found by name prefix, date of birth and email (rows under the old
// key and under the new), by this process and by another that used the
// old key before, the old key cannot be deleted while rows name it, and a
// patient the other process creates meanwhile is indexed under the new
// key; run again, it resumes, every row names the new key, the old
// key's wrapped copy is gone, search still works, and no token a database
// reader saw before matches any row.
func TestBlindIndexKeyReplacement(t *testing.T) {
	ctx := context.Background()
	kr, err := keys.NewKeyring(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := dbtest.Pool(t, 4)
	db := store.New(pool, phi.StaticKeyring{K: kr})
	server := store.New(pool, phi.StaticKeyring{K: kr}) // another process, e.g. the API server
	dr := storetest.User(t, db, "dr-reindex@clinic.test", "Dr Reindex", store.RoleProvider)
	seed := []store.Patient{
		{Name: "Ada Lovelace", DateOfBirth: "1915-12-10", Email: "ada@example.test"},
		{Name: "Grace Hopper", DateOfBirth: "1906-12-09", Email: "grace@example.test"},
		{Name: "Katherine Johnson", DateOfBirth: "1918-08-26", Email: "kj@example.test"},
		{Name: "Dorothy Vaughan", DateOfBirth: "1910-09-20", Email: "dv@example.test"},
	}
	var patients []store.Patient
	for _, p := range seed {
		p.CreatedBy = dr.ID
		patients = append(patients, storetest.Patient(t, db, p))
	}
	if _, err := store.FindPatients(ctx, server, dr.ID, "lov", 10); err != nil { // the server has used the old key
		t.Fatal(err)
	}
	oldTokens := allIndexTokens(t, db)
	oldKey := indexKeyIDs(t, db)
	if len(oldKey) != 1 {
		t.Fatalf("index keys before: %v, want one", oldKey)
	}

	stop, cancel := context.WithCancel(ctx)
	res, err := store.ReindexPatients(stop, db, "test-operator", 1, func(int) { cancel() })
	if !errors.Is(err, context.Canceled) || res.Patients != 1 {
		t.Fatalf("the interrupted re-index: %+v, %v; want one patient, then context.Canceled", res, err)
	}
	st, err := store.PHIIndexStatus(ctx, db)
	if err != nil || !st.Reindexing() || st.Left != int64(len(patients)-1) {
		t.Fatalf("status mid-way: %+v, %v; want two keys and %d patients left", st, err, len(patients)-1)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := phi.RetireIndexKeys(ctx, tx, res.Key); return err })
	if !errors.Is(err, phi.ErrIndexKeyInUse) || !slices.Equal(indexKeyIDs(t, db), append(oldKey, res.Key)) {
		t.Fatalf("retiring the old key while rows name it: %v; want ErrIndexKeyInUse and both keys kept", err)
	}
	late := storetest.Patient(t, server, store.Patient{Name: "Mary Jackson", DateOfBirth: "1921-04-09", Email: "mj@example.test", CreatedBy: dr.ID})
	patients = append(patients, late)
	if k := patientKey(t, db, late.ID); k != res.Key {
		t.Errorf("a patient created mid-way is indexed under key %d, want the new key %d", k, res.Key)
	}
	assertEveryPatientFound(t, db, dr, patients, "mid-way")
	assertEveryPatientFound(t, server, dr, patients, "mid-way, another process")

	res, err = store.ReindexPatients(ctx, db, "test-operator", 2, nil)
	if err != nil || res.Patients != len(seed)-1 || !slices.Equal(res.Retired, oldKey) {
		t.Fatalf("the resumed re-index: %+v, %v; want %d patients and key %v retired", res, err, len(seed)-1, oldKey)
	}
	if keys := indexKeyIDs(t, db); !slices.Equal(keys, []int32{res.Key}) {
		t.Errorf("index keys after: %v, want only the new key %d", keys, res.Key)
	}
	var stale int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM patients WHERE bidx_key_id IS DISTINCT FROM $1)
		+ (SELECT count(*) FROM patient_name_tokens WHERE key_id <> $1)`, res.Key).Scan(&stale); err != nil || stale != 0 {
		t.Errorf("%d patients or tokens do not name the new key (%v)", stale, err)
	}
	assertEveryPatientFound(t, db, dr, patients, "after")
	assertEveryPatientFound(t, server, dr, patients, "after, another process")

	for _, tok := range allIndexTokens(t, db) {
		if slices.ContainsFunc(oldTokens, func(o []byte) bool { return string(o) == string(tok) }) {
			t.Fatal("a token from before the re-index is still stored")
		}
	}
	var matches int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM patient_name_tokens WHERE token = ANY($1))
		+ (SELECT count(*) FROM patients WHERE email_bidx = ANY($1) OR dob_bidx = ANY($1))`, oldTokens).Scan(&matches); err != nil || matches != 0 {
		t.Errorf("a reader's old tokens still match %d rows (%v)", matches, err)
	}
	if st, err := store.PHIIndexStatus(ctx, db); err != nil || st.Reindexing() || st.Left != 0 {
		t.Errorf("status after: %+v, %v; want one key and nothing left", st, err)
	}
	var audited int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND resource_id = $2`,
		store.ActionIndexKeyRetire, strconv.Itoa(int(oldKey[0]))).Scan(&audited); err != nil || audited != 1 {
		t.Errorf("%d audit entries for the retirement of key %v (%v), want 1", audited, oldKey, err)
	}
}

// assertEveryPatientFound searches for each patient by a name prefix, by
// date of birth, by email, and by all three, and wants that patient alone.
func assertEveryPatientFound(t *testing.T, db *store.DB, dr store.User, patients []store.Patient, when string) {
	t.Helper()
	for _, p := range patients {
		words := strings.Fields(p.Name)
		prefix := strings.ToLower(words[len(words)-1][:3]) // of the last name
		searches := []struct{ by, q string }{
			{"name prefix", prefix}, {"date of birth", p.DateOfBirth}, {"email", p.Email},
			{"all three", prefix + " " + p.DateOfBirth + " " + p.Email},
		}
		for _, s := range searches {
			found, err := store.FindPatients(context.Background(), db, dr.ID, s.q, 10)
			if err != nil || len(found) != 1 || found[0].ID != p.ID {
				t.Errorf("%s: a search for patient %s by %s found %d patients (%v)", when, p.ID, s.by, len(found), err)
			}
		}
	}
}

// allIndexTokens are every blind-index value stored: name tokens, email
// and date-of-birth indexes.
func allIndexTokens(t *testing.T, db *store.DB) [][]byte {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT token FROM patient_name_tokens
		UNION ALL SELECT email_bidx FROM patients WHERE email_bidx IS NOT NULL
		UNION ALL SELECT dob_bidx FROM patients WHERE dob_bidx IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil || len(toks) == 0 {
		t.Fatalf("%d index tokens (%v)", len(toks), err)
	}
	return toks
}

// indexKeyIDs are the stored blind-index keys, oldest first.
func indexKeyIDs(t *testing.T, db *store.DB) []int32 {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id FROM phi_data_keys WHERE purpose = 'index' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// patientKey is the index key a patient's indexes name.
func patientKey(t *testing.T, db *store.DB, id string) int32 {
	t.Helper()
	var k int32
	if err := db.QueryRow(context.Background(), `SELECT bidx_key_id FROM patients WHERE id = $1`, id).Scan(&k); err != nil {
		t.Fatal(err)
	}
	return k
}
