package phi_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/phi"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/store/storetest"
	"github.com/openvisit/openvisit/recording"
)

// TestPHIFieldSwapFails: a ciphertext opens only for the table, column and
// row it was sealed for. Moved to another row or column — in the cipher,
// and in the database under the store — it does not decrypt, and the store
// refuses the row rather than show another patient's value.
func TestPHIFieldSwapFails(t *testing.T) {
	ctx := context.Background()
	db := storetest.DB(t)
	c := db.PHI()
	rowA, rowB := uuid.NewString(), uuid.NewString()
	sealed, err := c.SealString(ctx, phi.PatientName, rowA, "Ada Lovelace")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.OpenString(ctx, phi.PatientName, rowA, sealed); err != nil || got != "Ada Lovelace" {
		t.Fatalf("the value does not open where it was sealed: %q, %v", got, err)
	}
	moves := []struct {
		name string
		col  phi.Column
		row  string
	}{
		{"another row", phi.PatientName, rowB},
		{"another column", phi.PatientEmail, rowA},
		{"another table", phi.VisitReason, rowA},
	}
	for _, m := range moves {
		if _, err := c.Open(ctx, m.col, m.row, sealed); !errors.Is(err, phi.ErrOpen) {
			t.Errorf("%s: opened or failed otherwise: %v", m.name, err)
		}
	}
	relabelled := slices.Clone(sealed)
	relabelled[4]++ // another data key ID in the header
	if _, err := c.Open(ctx, phi.PatientName, rowA, relabelled); err == nil {
		t.Error("a ciphertext relabelled with another key ID opened")
	}

	dr := storetest.User(t, db, "dr-swap@clinic.test", "Dr Swap", store.RoleProvider)
	a := storetest.Patient(t, db, store.Patient{Name: "Alice Swap", DateOfBirth: "1970-01-01", Email: "alice@example.test", CreatedBy: dr.ID})
	b := storetest.Patient(t, db, store.Patient{Name: "Bob Swap", DateOfBirth: "1980-02-02", CreatedBy: dr.ID})
	if _, err := db.Exec(ctx, `UPDATE patients SET name_ct = (SELECT name_ct FROM patients WHERE id = $1) WHERE id = $2`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := store.PatientByID(ctx, db, b.ID); !errors.Is(err, phi.ErrOpen) {
		t.Errorf("Bob's record with Alice's name ciphertext read as %q, %v; want phi.ErrOpen", got.Name, err)
	}
	if _, err := db.Exec(ctx, `UPDATE patients SET date_of_birth_ct = email_ct WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := store.PatientByID(ctx, db, a.ID); !errors.Is(err, phi.ErrOpen) {
		t.Errorf("an email ciphertext moved into the date of birth read as %q, %v; want phi.ErrOpen", got.DateOfBirth, err)
	}
}

// TestPHIKeyRotation: the operator's KEK rotation (openvisit keys rotate,
// rewrap, retire — the recording package's functions) re-wraps the PHI
// data keys too, the old KEK cannot be retired while a PHI data key needs
// it, and after it is retired every value sealed before still decrypts (in
// a fresh process, with no key cached) and a new period's key works.
func TestPHIKeyRotation(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.Pool(t, 4)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	kf, err := keys.OpenKeyringFile(filepath.Join(t.TempDir(), "keyring.json"), true, now)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := kf.Keyring()
	oldKEK := kr.Primary()
	clock := now
	c := phi.New(phi.Params{DB: pool, Keyring: kf, Now: func() time.Time { return clock }})
	type sealedValue struct {
		col      phi.Column
		row, val string
		ct       []byte
	}
	var values []sealedValue
	seal := func(col phi.Column, val string) {
		row := uuid.NewString()
		ct, err := c.SealString(ctx, col, row, val)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, sealedValue{col, row, val, ct})
	}
	seal(phi.PatientName, "Grace Hopper")
	seal(phi.VisitReason, "follow-up on blood pressure")
	clock = clock.AddDate(0, 1, 0) // December: new data keys
	seal(phi.PatientName, "Katherine Johnson")
	if _, err := c.CurrentIndexKey(ctx); err != nil {
		t.Fatal(err)
	}
	var nkeys int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM phi_data_keys WHERE kek_id = $1`, oldKEK).Scan(&nkeys); err != nil || nkeys != 4 {
		t.Fatalf("%d data keys under the first KEK (%v), want 4: patients and visits for November, patients for December, the index key", nkeys, err)
	}

	newKEK, err := recording.RotateKEK(ctx, pool, kf, "test-operator", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := recording.RetireKEK(ctx, pool, kf, oldKEK, "test-operator", now); !errors.Is(err, recording.ErrKEKInUse) {
		t.Fatalf("retiring a KEK that PHI data keys need: %v, want ErrKEKInUse", err)
	}
	if _, err := recording.Rewrap(ctx, pool, kf, "test-operator"); err != nil {
		t.Fatal(err)
	}
	if err := recording.RetireKEK(ctx, pool, kf, oldKEK, "test-operator", now); err != nil {
		t.Fatalf("retire after rewrap: %v", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM phi_data_keys WHERE kek_id <> $1`, newKEK).Scan(&nkeys); err != nil || nkeys != 0 {
		t.Fatalf("%d data keys not under the new KEK (%v)", nkeys, err)
	}

	fresh := phi.New(phi.Params{DB: pool, Keyring: kf, Now: func() time.Time { return clock.AddDate(0, 1, 0) }})
	for _, v := range values {
		got, err := fresh.OpenString(ctx, v.col, v.row, v.ct)
		if err != nil || got != v.val {
			t.Errorf("%s.%s sealed before the rotation: %q, %v", v.col.Table, v.col.Column, got, err)
		}
	}
	row := uuid.NewString()
	ct, err := fresh.SealString(ctx, phi.PatientName, row, "Dorothy Vaughan")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.OpenString(ctx, phi.PatientName, row, ct); err != nil || got != "Dorothy Vaughan" {
		t.Errorf("a value under January's new key: %q, %v", got, err)
	}
	var kek string
	if err := pool.QueryRow(ctx, `SELECT kek_id FROM phi_data_keys WHERE purpose = 'patients' AND period = '2027-01'`).Scan(&kek); err != nil || kek != newKEK {
		t.Errorf("January's key is wrapped under %q (%v), want the new KEK %s", kek, err, newKEK)
	}
}

// TestNoKeyringRefuses: a store without a keyring refuses to write PHI
// rather than write it in the clear.
func TestNoKeyringRefuses(t *testing.T) {
	db := store.New(dbtest.Pool(t, 2), nil)
	u, err := store.CreateUser(context.Background(), db, "dr-nokey@clinic.test", "Dr", store.RoleProvider)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.CreatePatient(context.Background(), db, store.Patient{Name: "No Key", DateOfBirth: "1990-01-01", CreatedBy: ids.UserID(u.ID)})
	if !errors.Is(err, phi.ErrNoKeyring) {
		t.Errorf("CreatePatient without a keyring: %v, want phi.ErrNoKeyring", err)
	}
}
