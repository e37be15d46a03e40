package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
)

// NotifyWithin is HIPAA's outer limit for notifying individuals of a breach,
// counted from its discovery.
const NotifyWithin = 60 * 24 * time.Hour

// MediaThreshold: a breach affecting more than this many residents of one
// state requires notice to prominent media there; at or above it in all,
// notice to HHS without delay (smaller breaches go in the annual log).
const MediaThreshold = 500

// Incident is a suspected or confirmed breach being worked on.
type Incident struct {
	ID           string    `json:"id"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	DiscoveredAt time.Time `json:"discovered_at"`
	NotifyBy     time.Time `json:"notify_by"`
	Status       string    `json:"status"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
}

// Title and description are free text that may name a patient: sealed
// (phi.IncidentTitle, phi.IncidentDescription).
const incidentColumns = `id::text, title_ct, description_ct, title, description, discovered_at, notify_by, status, created_by::text, created_at`

func scanIncident(ctx context.Context, db DBTX, r pgx.Row) (Incident, error) {
	var i Incident
	var titleCT, descCT []byte
	var title, desc *string
	err := r.Scan(&i.ID, &titleCT, &descCT, &title, &desc, &i.DiscoveredAt, &i.NotifyBy, &i.Status, &i.CreatedBy, &i.CreatedAt)
	if err != nil {
		return Incident{}, notFound(err)
	}
	c := cipherOf(db)
	if i.Title, err = c.Read(ctx, phi.IncidentTitle, i.ID, titleCT, title); err != nil {
		return Incident{}, fmt.Errorf("store: incident %s: %w", i.ID, err)
	}
	if i.Description, err = c.Read(ctx, phi.IncidentDescription, i.ID, descCT, desc); err != nil {
		return Incident{}, fmt.Errorf("store: incident %s: %w", i.ID, err)
	}
	return i, nil
}

// CreateIncident opens an incident; its deadline is 60 days from discovery.
func CreateIncident(ctx context.Context, db DBTX, title, description string, discovered time.Time, by ids.UserID) (Incident, error) {
	id := uuid.NewString()
	c := cipherOf(db)
	titleCT, err := c.SealString(ctx, phi.IncidentTitle, id, title)
	if err != nil {
		return Incident{}, fmt.Errorf("store: create incident: %w", err)
	}
	descCT, err := c.SealString(ctx, phi.IncidentDescription, id, description)
	if err != nil {
		return Incident{}, fmt.Errorf("store: create incident: %w", err)
	}
	row := db.QueryRow(ctx, `INSERT INTO incidents (id, title_ct, description_ct, discovered_at, notify_by, created_by)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+incidentColumns,
		id, titleCT, descCT, discovered, discovered.Add(NotifyWithin), string(by))
	i, err := scanIncident(ctx, db, row)
	if err != nil {
		return Incident{}, fmt.Errorf("store: create incident: %w", err)
	}
	return i, nil
}

// Incidents lists incidents, open first, by deadline.
func Incidents(ctx context.Context, db DBTX) ([]Incident, error) {
	rows, err := db.Query(ctx, `SELECT `+incidentColumns+` FROM incidents ORDER BY status <> 'open', notify_by LIMIT 500`)
	if err != nil {
		return nil, fmt.Errorf("store: incidents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Incident, error) { return scanIncident(ctx, db, r) })
}

// IncidentByID finds an incident.
func IncidentByID(ctx context.Context, db DBTX, id string) (Incident, error) {
	if !ids.Valid(id) {
		return Incident{}, ErrNotFound
	}
	return scanIncident(ctx, db, db.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
}

// ScopeQuery names what a breach may have touched: everything one actor
// reached, or every recording sealed under one key, between two times.
type ScopeQuery struct {
	ActorID  string    `json:"actor_id,omitempty"`
	KEKID    string    `json:"kek_id,omitempty"`
	From, To time.Time `json:"-"`
}

// Scope is the answer: the affected patients and recordings, with counts
// by state of residence and the notices they call for.
type Scope struct {
	Patients          []Patient      `json:"patients"`
	RecordingIDs      []string       `json:"recording_ids"`
	Total             int            `json:"total"`
	ByState           map[string]int `json:"by_state"`
	MediaNoticeStates []string       `json:"media_notice_states"`
	HHSImmediate      bool           `json:"hhs_immediate"`
	UnknownState      int            `json:"unknown_state"`
}

// BreachScope answers q. Patients are reached through audit entries naming
// them or their visits (actor), or through their visits' recordings (key).
func BreachScope(ctx context.Context, db DBTX, q ScopeQuery) (Scope, error) {
	var patientSQL, recordingSQL string
	var args []any
	switch {
	case q.ActorID != "":
		args = []any{q.ActorID, q.From, q.To}
		const touched = `SELECT patient_id, visit_id, resource_type, resource_id FROM audit_events
			WHERE actor_id = $1 AND at >= $2 AND at < $3 AND outcome = 'success'`
		patientSQL = `WITH ev AS (` + touched + `)
			SELECT ` + patientColumns + ` FROM patients WHERE id::text IN (SELECT patient_id FROM ev WHERE patient_id <> '')
			   OR id IN (SELECT v.patient_id FROM visits v WHERE v.id::text IN (SELECT visit_id FROM ev WHERE visit_id <> ''))
			ORDER BY id`
		recordingSQL = `WITH ev AS (` + touched + `)
			SELECT r.id::text FROM recordings r WHERE r.id::text IN (SELECT resource_id FROM ev WHERE resource_type = 'recording')
			   OR r.visit_id::text IN (SELECT visit_id FROM ev WHERE resource_type = 'recording' AND visit_id <> '')
			ORDER BY r.id`
	case q.KEKID != "":
		args = []any{q.KEKID, q.From, q.To}
		const sealed = `SELECT id, visit_id FROM recordings WHERE kek_id = $1 AND started_at >= $2 AND started_at < $3`
		patientSQL = `SELECT ` + patientColumns + ` FROM patients WHERE id IN
			(SELECT v.patient_id FROM visits v WHERE v.id IN (SELECT visit_id FROM (` + sealed + `) s)) ORDER BY id`
		recordingSQL = `SELECT id::text FROM (` + sealed + `) s ORDER BY id`
	default:
		return Scope{}, fmt.Errorf("store: breach scope: an actor or a key is required")
	}
	rows, err := db.Query(ctx, patientSQL, args...)
	if err != nil {
		return Scope{}, fmt.Errorf("store: breach scope: %w", err)
	}
	sc := Scope{ByState: map[string]int{}}
	if sc.Patients, err = collectPatients(ctx, cipherOf(db), rows); err != nil {
		return Scope{}, fmt.Errorf("store: breach scope: %w", err)
	}
	rows, err = db.Query(ctx, recordingSQL, args...)
	if err != nil {
		return Scope{}, fmt.Errorf("store: breach scope: %w", err)
	}
	if sc.RecordingIDs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return Scope{}, fmt.Errorf("store: breach scope: %w", err)
	}
	for _, p := range sc.Patients {
		if p.State == "" {
			sc.UnknownState++
			continue
		}
		sc.ByState[p.State]++
	}
	for st, n := range sc.ByState {
		if n > MediaThreshold {
			sc.MediaNoticeStates = append(sc.MediaNoticeStates, st)
		}
	}
	sort.Strings(sc.MediaNoticeStates)
	sc.Total = len(sc.Patients)
	sc.HHSImmediate = sc.Total >= MediaThreshold
	if sc.Patients == nil {
		sc.Patients = []Patient{}
	}
	if sc.RecordingIDs == nil {
		sc.RecordingIDs = []string{}
	}
	return sc, nil
}

// SetIncidentStatus changes an incident's status.
func SetIncidentStatus(ctx context.Context, db DBTX, id, status string) error {
	if !ids.Valid(id) {
		return ErrNotFound
	}
	tag, err := db.Exec(ctx, `UPDATE incidents SET status = $2 WHERE id = $1`, id, status)
	if err != nil {
		return fmt.Errorf("store: incident status: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
