package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/phi"
)

// Visit statuses.
const (
	StatusScheduled  = "scheduled"
	StatusWaiting    = "waiting"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusCancelled  = "cancelled"
	StatusNoShow     = "no_show"
)

// Closed reports whether a visit in status can no longer be joined.
func Closed(status string) bool {
	return status == StatusCompleted || status == StatusCancelled || status == StatusNoShow
}

// ScheduledVisit is a visit with its patient and timestamps, as the
// provider's schedule shows it.
type ScheduledVisit struct {
	Visit
	PatientID   string     `json:"patient_id,omitempty"`
	PatientName string     `json:"patient_name,omitempty"`
	Reason      string     `json:"reason"`
	WaitingAt   *time.Time `json:"waiting_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	NoShowAt    *time.Time `json:"no_show_at,omitempty"`
}

const scheduledColumns = `v.id::text, v.status, COALESCE(v.provider_id::text, ''), v.scheduled_start, v.scheduled_end,
	COALESCE(v.sfu_node_id, ''), v.created_at, COALESCE(v.patient_id::text, ''), p.name_ct, p.name, v.reason_ct, v.reason,
	v.waiting_at, v.started_at, v.ended_at, v.cancelled_at, v.no_show_at`

func scanScheduled(ctx context.Context, c *phi.Cipher, r pgx.Row) (ScheduledVisit, error) {
	var v ScheduledVisit
	var id, prov, node string
	var nameCT, reasonCT []byte
	var name, reason *string
	err := r.Scan(&id, &v.Status, &prov, &v.ScheduledStart, &v.ScheduledEnd, &node, &v.CreatedAt, &v.PatientID, &nameCT, &name,
		&reasonCT, &reason, &v.WaitingAt, &v.StartedAt, &v.EndedAt, &v.CancelledAt, &v.NoShowAt)
	if err != nil {
		return ScheduledVisit{}, notFound(err)
	}
	v.ID, v.ProviderID, v.NodeID = ids.VisitID(id), ids.UserID(prov), ids.NodeID(node)
	if v.PatientID != "" {
		if v.PatientName, err = c.Read(ctx, phi.PatientName, v.PatientID, nameCT, name); err != nil {
			return ScheduledVisit{}, fmt.Errorf("store: visit %s: %w", id, err)
		}
	}
	if v.Reason, err = c.Read(ctx, phi.VisitReason, id, reasonCT, reason); err != nil {
		return ScheduledVisit{}, fmt.Errorf("store: visit %s: %w", id, err)
	}
	return v, nil
}

// ScheduledVisitByID returns a visit with its patient's name.
func ScheduledVisitByID(ctx context.Context, db DBTX, id ids.VisitID, forUpdate bool) (ScheduledVisit, error) {
	if !ids.Valid(string(id)) {
		return ScheduledVisit{}, ErrNotFound
	}
	q := `SELECT ` + scheduledColumns + ` FROM visits v LEFT JOIN patients p ON p.id = v.patient_id WHERE v.id = $1`
	if forUpdate {
		q += ` FOR UPDATE OF v`
	}
	return scanScheduled(ctx, cipherOf(db), db.QueryRow(ctx, q, string(id)))
}

// ProviderSchedule lists a provider's visits — their own and those they
// are a guest provider of (visit_staff) — starting in [from, to), plus
// unscheduled ones created in that range, by start.
func ProviderSchedule(ctx context.Context, db DBTX, provider ids.UserID, from, to time.Time) ([]ScheduledVisit, error) {
	rows, err := db.Query(ctx, `SELECT `+scheduledColumns+` FROM visits v LEFT JOIN patients p ON p.id = v.patient_id
		WHERE (v.provider_id = $1 OR EXISTS (SELECT 1 FROM visit_staff g WHERE g.visit_id = v.id AND g.user_id = $1)) AND COALESCE(v.scheduled_start, v.created_at) >= $2 AND COALESCE(v.scheduled_start, v.created_at) < $3
		ORDER BY COALESCE(v.scheduled_start, v.created_at), v.id LIMIT 1000`, string(provider), from, to)
	if err != nil {
		return nil, fmt.Errorf("store: schedule: %w", err)
	}
	c := cipherOf(db)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ScheduledVisit, error) { return scanScheduled(ctx, c, r) })
}

// PatientSchedule lists patient's scheduled visits starting in [from,
// to) (nil: unbounded), by start, at most limit.
func PatientSchedule(ctx context.Context, db DBTX, patient string, from, to *time.Time, limit int) ([]ScheduledVisit, error) {
	if !ids.Valid(patient) {
		return nil, nil
	}
	c := cipherOf(db)
	rows, err := db.Query(ctx, `SELECT `+scheduledColumns+` FROM visits v LEFT JOIN patients p ON p.id = v.patient_id
		WHERE v.patient_id = $1 AND v.scheduled_start IS NOT NULL
		  AND ($2::timestamptz IS NULL OR v.scheduled_start >= $2) AND ($3::timestamptz IS NULL OR v.scheduled_start < $3)
		ORDER BY v.scheduled_start, v.id LIMIT $4`, patient, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("store: patient schedule: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ScheduledVisit, error) { return scanScheduled(ctx, c, r) })
}

// VisitRecorded reports whether any recording of visit was made.
func VisitRecorded(ctx context.Context, db DBTX, visit ids.VisitID) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM recordings WHERE visit_id = $1)`, string(visit)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: visit recorded: %w", err)
	}
	return ok, nil
}

// Overlaps reports whether provider has another open scheduled visit
// overlapping [start, end), other than except.
func Overlaps(ctx context.Context, db DBTX, provider ids.UserID, start, end time.Time, except ids.VisitID) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM visits WHERE provider_id = $1
		AND status IN ('scheduled', 'waiting', 'in_progress') AND scheduled_start IS NOT NULL
		AND scheduled_start < $3 AND scheduled_end > $2 AND id::text <> $4)`,
		string(provider), start, end, string(except)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: overlap: %w", err)
	}
	return ok, nil
}

// ScheduleVisit creates a scheduled visit with a patient.
func ScheduleVisit(ctx context.Context, db DBTX, id ids.VisitID, provider ids.UserID, patient string, node ids.NodeID, start, end time.Time, reason string) error {
	sealed, err := cipherOf(db).SealString(ctx, phi.VisitReason, string(id), reason)
	if err != nil {
		return fmt.Errorf("store: schedule visit: %w", err)
	}
	_, err = db.Exec(ctx, `INSERT INTO visits (id, provider_id, patient_id, sfu_node_id, scheduled_start, scheduled_end, reason_ct)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, string(id), string(provider), patient, nullable(string(node)), start, end, sealed)
	if err != nil {
		return fmt.Errorf("store: schedule visit: %w", err)
	}
	return nil
}

// Reschedule moves a visit.
func Reschedule(ctx context.Context, db DBTX, id ids.VisitID, start, end time.Time) error {
	_, err := db.Exec(ctx, `UPDATE visits SET scheduled_start = $2, scheduled_end = $3 WHERE id = $1`, string(id), start, end)
	return err
}

// SetVisitStatus moves a visit to status and stamps the matching time.
func SetVisitStatus(ctx context.Context, db DBTX, id ids.VisitID, status string, now time.Time) error {
	col := map[string]string{
		StatusWaiting: "waiting_at", StatusInProgress: "started_at", StatusCompleted: "ended_at",
		StatusCancelled: "cancelled_at", StatusNoShow: "no_show_at",
	}[status]
	if col == "" {
		return fmt.Errorf("store: set status: unknown status")
	}
	_, err := db.Exec(ctx, `UPDATE visits SET status = $2, `+col+` = COALESCE(`+col+`, $3) WHERE id = $1`, string(id), status, now)
	if err != nil {
		return fmt.Errorf("store: set status: %w", err)
	}
	return nil
}

// Participant is one person (or the recorder) in a visit.
type Participant struct {
	ID         ids.ParticipantID `json:"id"`
	Role       string            `json:"role"`
	State      string            `json:"state"`
	UserID     ids.UserID        `json:"user_id,omitempty"`
	InviteID   string            `json:"-"`
	WaitingAt  *time.Time        `json:"waiting_at,omitempty"`
	AdmittedAt *time.Time        `json:"admitted_at,omitempty"`
	JoinedAt   *time.Time        `json:"joined_at,omitempty"`
	LeftAt     *time.Time        `json:"left_at,omitempty"`
	// MediaState is the participant's media connection as its media node
	// last reported it (connecting, connected, disconnected, failed, left);
	// empty before its first join (media.go).
	MediaState    string     `json:"media_state,omitempty"`
	MediaStateAt  *time.Time `json:"media_state_at,omitempty"`
	MediaFailedAt *time.Time `json:"media_failed_at,omitempty"` // the last failed connection
}

const participantColumns = `id::text, role, state, COALESCE(user_id::text, ''), COALESCE(invite_id::text, ''), waiting_at, admitted_at, joined_at, left_at,
	COALESCE(media_state, ''), media_state_at, media_failed_at`

func scanParticipant(r pgx.Row) (Participant, error) {
	var p Participant
	var id, uid string
	err := r.Scan(&id, &p.Role, &p.State, &uid, &p.InviteID, &p.WaitingAt, &p.AdmittedAt, &p.JoinedAt, &p.LeftAt,
		&p.MediaState, &p.MediaStateAt, &p.MediaFailedAt)
	p.ID, p.UserID = ids.ParticipantID(id), ids.UserID(uid)
	return p, notFound(err)
}

// Participants lists a visit's participants (not the recorder).
func Participants(ctx context.Context, db DBTX, visit ids.VisitID) ([]Participant, error) {
	rows, err := db.Query(ctx, `SELECT `+participantColumns+` FROM participants WHERE visit_id = $1 AND role <> 'recorder'
		ORDER BY created_at, id`, string(visit))
	if err != nil {
		return nil, fmt.Errorf("store: participants: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Participant, error) { return scanParticipant(r) })
}

// ParticipantByID finds one participant of a visit.
func ParticipantByID(ctx context.Context, db DBTX, visit ids.VisitID, id ids.ParticipantID) (Participant, error) {
	if !ids.Valid(string(id)) {
		return Participant{}, ErrNotFound
	}
	return scanParticipant(db.QueryRow(ctx, `SELECT `+participantColumns+` FROM participants WHERE visit_id = $1 AND id = $2`,
		string(visit), string(id)))
}

// AddWaitingInvitee adds an invitee (patient, caregiver or interpreter, the
// invite's role) in the waiting room.
func AddWaitingInvitee(ctx context.Context, db DBTX, visit ids.VisitID, id ids.ParticipantID, inv Invite, now time.Time) error {
	role := inv.Role
	if role == "" {
		role = InviteePatient
	}
	_, err := db.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, state, invite_id, waiting_at)
		VALUES ($1, $2, $3, $4, 'waiting', $5, $6)`, string(id), string(visit), role, "invite:"+inv.ID, inv.ID, now)
	if err != nil {
		return fmt.Errorf("store: add patient: %w", err)
	}
	return nil
}

// SetParticipantState moves a participant (admitted stamps admitted_at).
func SetParticipantState(ctx context.Context, db DBTX, visit ids.VisitID, id ids.ParticipantID, state string, now time.Time) error {
	tag, err := db.Exec(ctx, `UPDATE participants SET state = $3,
		admitted_at = CASE WHEN $3 = 'admitted' THEN COALESCE(admitted_at, $4) ELSE admitted_at END,
		left_at = CASE WHEN $3 IN ('left', 'removed', 'turned_away') THEN COALESCE(left_at, $4) ELSE left_at END
		WHERE visit_id = $1 AND id = $2`, string(visit), string(id), state, now)
	if err != nil {
		return fmt.Errorf("store: participant state: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// MarkJoined stamps a participant's first join.
func MarkJoined(ctx context.Context, db DBTX, id ids.ParticipantID, now time.Time) error {
	_, err := db.Exec(ctx, `UPDATE participants SET joined_at = COALESCE(joined_at, $2) WHERE id = $1`, string(id), now)
	return err
}

// RevokeVisitSessions ends every patient session of a visit.
func RevokeVisitSessions(ctx context.Context, db DBTX, visit ids.VisitID, now time.Time, reason string) (int, error) {
	tag, err := db.Exec(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE visit_id = $1 AND revoked_at IS NULL`,
		string(visit), now, reason)
	if err != nil {
		return 0, fmt.Errorf("store: revoke visit sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RevokeParticipantSessions ends the sessions of one patient participant.
func RevokeParticipantSessions(ctx context.Context, db DBTX, id ids.ParticipantID, now time.Time, reason string) error {
	_, err := db.Exec(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE participant_id = $1 AND revoked_at IS NULL`,
		string(id), now, reason)
	return err
}

// VisitsToExpire lists up to limit open visits whose scheduled end is
// before endedBefore, or, unscheduled, that were created before
// createdBefore.
func VisitsToExpire(ctx context.Context, db DBTX, endedBefore, createdBefore time.Time, limit int) ([]ids.VisitID, error) {
	rows, err := db.Query(ctx, `SELECT id::text FROM visits
		WHERE status IN ('scheduled', 'waiting', 'in_progress')
		  AND ((scheduled_end IS NOT NULL AND scheduled_end < $1) OR (scheduled_end IS NULL AND created_at < $2))
		ORDER BY created_at LIMIT $3`, endedBefore, createdBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("store: visits to expire: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ids.VisitID, error) {
		var id string
		err := r.Scan(&id)
		return ids.VisitID(id), err
	})
}
