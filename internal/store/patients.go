package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Patient is a patient record. Every field but ID is PHI: never log it.
type Patient struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	DateOfBirth string     `json:"date_of_birth"` // YYYY-MM-DD
	Email       string     `json:"email"`
	Phone       string     `json:"phone"`
	State       string     `json:"state"`
	CreatedBy   ids.UserID `json:"-"`
	CreatedAt   time.Time  `json:"created_at"`
}

const patientColumns = `id::text, name, to_char(date_of_birth, 'YYYY-MM-DD'), email, phone, state, created_by::text, created_at`

func scanPatient(r pgx.Row) (Patient, error) {
	var p Patient
	var by string
	err := r.Scan(&p.ID, &p.Name, &p.DateOfBirth, &p.Email, &p.Phone, &p.State, &by, &p.CreatedAt)
	p.CreatedBy = ids.UserID(by)
	return p, notFound(err)
}

// CreatePatient stores a new patient record.
func CreatePatient(ctx context.Context, db DBTX, p Patient) (Patient, error) {
	p.ID = uuid.NewString()
	row := db.QueryRow(ctx, `INSERT INTO patients (id, name, date_of_birth, email, phone, state, created_by)
		VALUES ($1, $2, $3::date, $4, $5, $6, $7) RETURNING `+patientColumns,
		p.ID, p.Name, p.DateOfBirth, p.Email, p.Phone, p.State, string(p.CreatedBy))
	out, err := scanPatient(row)
	if err != nil {
		return Patient{}, fmt.Errorf("store: create patient: %w", err)
	}
	return out, nil
}

// PatientByID finds a patient record.
func PatientByID(ctx context.Context, db DBTX, id string) (Patient, error) {
	if !ids.Valid(id) {
		return Patient{}, ErrNotFound
	}
	return scanPatient(db.QueryRow(ctx, `SELECT `+patientColumns+` FROM patients WHERE id = $1`, id))
}

// FindPatients lists the patients a provider may see (created by them or
// with a visit with them) whose name contains q, by name.
func FindPatients(ctx context.Context, db DBTX, provider ids.UserID, q string, limit int) ([]Patient, error) {
	q = strings.ToLower(strings.TrimSpace(q))
	rows, err := db.Query(ctx, `SELECT `+patientColumns+` FROM patients p
		WHERE (p.created_by = $1 OR EXISTS (SELECT 1 FROM visits v WHERE v.patient_id = p.id AND v.provider_id = $1))
		  AND ($2 = '' OR strpos(lower(p.name), $2) > 0)
		ORDER BY lower(p.name), p.id LIMIT $3`, string(provider), q, limit)
	if err != nil {
		return nil, fmt.Errorf("store: find patients: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Patient, error) { return scanPatient(r) })
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
