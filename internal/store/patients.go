package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
)

// Patient is a patient record. Every field but ID is PHI: never log it.
// Name, date of birth, email and phone are stored as ciphertext (phi
// package; docs/DESIGN.md decision 13), found through blind indexes.
type Patient struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DateOfBirth string `json:"date_of_birth"` // YYYY-MM-DD
	Email       string `json:"email"`
	Phone       string `json:"phone"`
	// MRN is the medical record number an EHR knows the patient by, as
	// "system|value" (phi.NormaliseMRN); "" when none is set.
	MRN       string     `json:"mrn,omitempty"`
	State     string     `json:"state"`
	CreatedBy ids.UserID `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
}

// patientColumns are read by scanPatient: the ciphertexts, then the
// plaintext columns a row keeps until the migration job reaches it.
const patientColumns = `id::text, name_ct, date_of_birth_ct, email_ct, phone_ct, mrn_ct,
	name, to_char(date_of_birth, 'YYYY-MM-DD'), email, phone, mrn, state, created_by::text, created_at`

func scanPatient(ctx context.Context, c *phi.Cipher, r pgx.Row) (Patient, error) {
	var p Patient
	var by string
	var ct [5][]byte
	var plain [5]*string
	err := r.Scan(&p.ID, &ct[0], &ct[1], &ct[2], &ct[3], &ct[4], &plain[0], &plain[1], &plain[2], &plain[3], &plain[4],
		&p.State, &by, &p.CreatedAt)
	if err != nil {
		return Patient{}, notFound(err)
	}
	p.CreatedBy = ids.UserID(by)
	fields := []*string{&p.Name, &p.DateOfBirth, &p.Email, &p.Phone, &p.MRN}
	for i, col := range patientFields {
		if i == 4 && ct[i] == nil && plain[i] == nil {
			continue // no medical record number
		}
		if *fields[i], err = c.Read(ctx, col, p.ID, ct[i], plain[i]); err != nil {
			return Patient{}, fmt.Errorf("store: patient %s: %w", p.ID, err)
		}
	}
	return p, nil
}

// patientFields are the encrypted fields of a patient, in patientColumns' order.
var patientFields = []phi.Column{phi.PatientName, phi.PatientDOB, phi.PatientEmail, phi.PatientPhone, phi.PatientMRN}

func collectPatients(ctx context.Context, c *phi.Cipher, rows pgx.Rows) ([]Patient, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Patient, error) { return scanPatient(ctx, c, r) })
}

// CreatePatient stores a new patient record: its PHI sealed, its blind
// indexes and name tokens written beside it.
func CreatePatient(ctx context.Context, db DBTX, p Patient) (Patient, error) {
	p.ID = uuid.NewString()
	if dob, ok := phi.NormaliseDOB(p.DateOfBirth); ok {
		p.DateOfBirth = dob
	}
	c := cipherOf(db)
	var sealed [5][]byte
	for i, v := range []string{p.Name, p.DateOfBirth, p.Email, p.Phone, p.MRN} {
		if i == 4 && v == "" {
			continue // no medical record number: NULL
		}
		var err error
		if sealed[i], err = c.SealString(ctx, patientFields[i], p.ID, v); err != nil {
			return Patient{}, fmt.Errorf("store: create patient: %w", err)
		}
	}
	err := db.QueryRow(ctx, `INSERT INTO patients (id, name_ct, date_of_birth_ct, email_ct, phone_ct, mrn_ct, state, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at`,
		p.ID, sealed[0], sealed[1], sealed[2], sealed[3], sealed[4], p.State, string(p.CreatedBy)).Scan(&p.CreatedAt)
	if isUniqueViolation(err) {
		return Patient{}, ErrConflict // another patient has this medical record number
	}
	if err != nil {
		return Patient{}, fmt.Errorf("store: create patient: %w", err)
	}
	key, err := c.CurrentIndexKey(ctx)
	if err != nil {
		return Patient{}, fmt.Errorf("store: create patient: %w", err)
	}
	if err := indexPatient(ctx, db, key, p); err != nil {
		return Patient{}, err
	}
	return p, nil
}

// indexPatient (re)writes patient p's blind indexes and name tokens, all
// under key, and records key as theirs (even with no token: the re-index
// then knows the row is done).
func indexPatient(ctx context.Context, db DBTX, key phi.IndexKey, p Patient) error {
	_, err := db.Exec(ctx, `UPDATE patients SET email_bidx = $2, dob_bidx = $3, mrn_bidx = $5, bidx_key_id = $4 WHERE id = $1`,
		p.ID, key.Email(p.Email), key.DOB(p.DateOfBirth), key.ID, key.MRN(p.MRN))
	if isUniqueViolation(err) {
		return ErrConflict // another patient has this medical record number
	}
	if err != nil {
		return fmt.Errorf("store: index patient: %w", err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM patient_name_tokens WHERE patient_id = $1`, p.ID); err != nil {
		return fmt.Errorf("store: index patient: %w", err)
	}
	_, err = db.Exec(ctx, `INSERT INTO patient_name_tokens (patient_id, token, key_id)
		SELECT $1, t, $3 FROM unnest($2::bytea[]) AS t ON CONFLICT DO NOTHING`, p.ID, key.Names(p.Name), key.ID)
	if err != nil {
		return fmt.Errorf("store: index patient: %w", err)
	}
	return nil
}

// PatientByID finds a patient record.
func PatientByID(ctx context.Context, db DBTX, id string) (Patient, error) {
	if !ids.Valid(id) {
		return Patient{}, ErrNotFound
	}
	return scanPatient(ctx, cipherOf(db), db.QueryRow(ctx, `SELECT `+patientColumns+` FROM patients WHERE id = $1`, id))
}

// PatientByMRN finds the patient whose medical record number is mrn
// ("system|value", phi.NormaliseMRN) through its blind index, under every
// index key there is (a re-index may be under way).
func PatientByMRN(ctx context.Context, db DBTX, mrn string) (Patient, error) {
	c := cipherOf(db)
	keys, err := c.IndexKeys(ctx)
	if err != nil {
		return Patient{}, fmt.Errorf("store: patient by mrn: %w", err)
	}
	var macs [][]byte
	for _, k := range keys {
		if m := k.MRN(mrn); m != nil {
			macs = append(macs, m)
		}
	}
	if len(macs) == 0 {
		return Patient{}, ErrNotFound
	}
	return scanPatient(ctx, c, db.QueryRow(ctx, `SELECT `+patientColumns+` FROM patients WHERE mrn_bidx = ANY($1)`, macs))
}

// PatientQuery is a search as its blind indexes see it: every name prefix
// must match, and the date of birth and the email when given. Each is
// computed under every index key there is (phi.Cipher.IndexKeys): during a
// re-index some rows hold the old key's tokens and some the new's, and all
// of one row's are under one key, so a row matches all NameCount prefixes
// through one key's tokens or none.
type PatientQuery struct {
	Names     [][]byte // each distinct prefix under each index key
	NameCount int      // how many distinct prefixes a row must match
	DOB       [][]byte // under each index key; empty: not given
	Email     [][]byte
	plain     string // the name words, for rows not yet encrypted
	nobody    bool   // a search that can match no one
}

// ParsePatientQuery reads a search: a word that is a date (YYYY-MM-DD) is
// the date of birth, a word with an @ the exact email, the others name
// prefixes (phi.MinPrefix characters or more).
func ParsePatientQuery(ctx context.Context, c *phi.Cipher, q string) (PatientQuery, error) {
	keys, err := c.IndexKeys(ctx)
	if err != nil {
		return PatientQuery{}, fmt.Errorf("store: patient search: %w", err)
	}
	var names []string
	var dob, email string
	for _, w := range strings.Fields(q) {
		switch _, isDate := phi.NormaliseDOB(w); {
		case isDate:
			dob = w
		case strings.Contains(w, "@"):
			email = w
		default:
			names = append(names, w)
		}
	}
	pq := PatientQuery{Names: [][]byte{}, DOB: [][]byte{}, Email: [][]byte{}}
	pq.plain = strings.Join(phi.NameWords(strings.Join(names, " ")), " ")
	for _, k := range keys {
		toks, ok := k.Search(pq.plain)
		pq.nobody, pq.NameCount = !ok, len(toks)
		pq.Names = append(pq.Names, toks...)
		if dob != "" {
			pq.DOB = append(pq.DOB, k.DOB(dob))
		}
		if email != "" {
			pq.Email = append(pq.Email, k.Email(email))
		}
	}
	return pq, nil
}

// patientMatch is the WHERE clause of a PatientQuery in $2..$6: rows the
// migration job has not reached yet are matched on their plaintext.
const patientMatch = `(
	(p.name_ct IS NOT NULL
	 AND ($3::integer = 0 OR (SELECT count(*) FROM patient_name_tokens t
	      WHERE t.patient_id = p.id AND t.token = ANY($2::bytea[])) = $3::integer)
	 AND (cardinality($4::bytea[]) = 0 OR p.dob_bidx = ANY($4::bytea[]))
	 AND (cardinality($5::bytea[]) = 0 OR p.email_bidx = ANY($5::bytea[])))
	OR (p.name_ct IS NULL AND strpos(lower(p.name), $6) > 0 AND cardinality($4::bytea[]) = 0 AND cardinality($5::bytea[]) = 0))`

func (pq PatientQuery) args() []any {
	return []any{pq.Names, pq.NameCount, pq.DOB, pq.Email, pq.plain}
}

// FindPatients lists the patients a provider may see (created by them or
// with a visit with them) that match q (ParsePatientQuery), by name. The
// newest limit matches are taken, then sorted (names are ciphertext to
// the database, so it cannot sort them).
func FindPatients(ctx context.Context, db DBTX, provider ids.UserID, q string, limit int) ([]Patient, error) {
	c := cipherOf(db)
	pq, err := ParsePatientQuery(ctx, c, q)
	if err != nil || pq.nobody {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT `+patientColumns+` FROM patients p
		WHERE (p.created_by = $1 OR EXISTS (SELECT 1 FROM visits v WHERE v.patient_id = p.id AND v.provider_id = $1))
		  AND `+patientMatch+`
		ORDER BY p.created_at DESC, p.id LIMIT $7`, append([]any{string(provider)}, append(pq.args(), limit)...)...)
	if err != nil {
		return nil, fmt.Errorf("store: find patients: %w", err)
	}
	return sortedPatients(collectPatients(ctx, c, rows))
}

// LookupPatients finds any patient by a search (ParsePatientQuery) — the
// admin's lookup by name and date of birth — by name, at most limit.
func LookupPatients(ctx context.Context, db DBTX, q string, limit int) ([]Patient, error) {
	c := cipherOf(db)
	pq, err := ParsePatientQuery(ctx, c, q)
	if err != nil || pq.nobody {
		return nil, err
	}
	rows, err := db.Query(ctx, `SELECT `+patientColumns+` FROM patients p WHERE TRUE AND `+patientMatch+`
		ORDER BY p.created_at DESC, p.id LIMIT $1`, append([]any{limit}, pq.args()...)...)
	if err != nil {
		return nil, fmt.Errorf("store: lookup patients: %w", err)
	}
	return sortedPatients(collectPatients(ctx, c, rows))
}

func sortedPatients(list []Patient, err error) ([]Patient, error) {
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(list, func(a, b Patient) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return list, nil
}

// PatientExists reports whether patient id exists.
func PatientExists(ctx context.Context, db DBTX, id string) (bool, error) {
	if !ids.Valid(id) {
		return false, nil
	}
	var ok bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1)`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("store: patient exists: %w", err)
	}
	return ok, nil
}

// PatientRelation reports whether provider created the patient or has a
// visit with them.
func PatientRelation(ctx context.Context, db DBTX, provider ids.UserID, patient string) (bool, error) {
	if !ids.Valid(patient) || !ids.Valid(string(provider)) {
		return false, nil
	}
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1 AND created_by = $2)
		OR EXISTS (SELECT 1 FROM visits WHERE patient_id = $1 AND provider_id = $2)`, patient, string(provider)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: patient relation: %w", err)
	}
	return ok, nil
}
