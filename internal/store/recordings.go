package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// Recording statuses.
const (
	RecRecording  = "recording"
	RecFinalizing = "finalizing"
	RecComplete   = "complete"
	RecIncomplete = "incomplete"
	RecDeleted    = "deleted"
)

// Chunk statuses.
const (
	ChunkUploading = "uploading"
	ChunkComplete  = "complete"
	ChunkLost      = "lost"
	ChunkDeleted   = "deleted"
)

// Consent is a patient's answer to a recording request.
type Consent struct {
	ID            string            `json:"id"`
	VisitID       ids.VisitID       `json:"visit_id"`
	ParticipantID ids.ParticipantID `json:"participant_id"`
	Kind          string            `json:"kind"`
	GivenAt       *time.Time        `json:"given_at,omitempty"`
	DeclinedAt    *time.Time        `json:"declined_at,omitempty"`
	WithdrawnAt   *time.Time        `json:"withdrawn_at,omitempty"`
}

// Active reports whether c is a consent in force.
func (c Consent) Active() bool { return c.GivenAt != nil && c.WithdrawnAt == nil }

// RecordConsent stores an answer (accept or decline) by participant.
func RecordConsent(ctx context.Context, db DBTX, visit ids.VisitID, participant ids.ParticipantID, accept bool, now time.Time) (Consent, error) {
	c := Consent{ID: uuid.NewString(), VisitID: visit, ParticipantID: participant, Kind: "recording"}
	if accept {
		c.GivenAt = &now
	} else {
		c.DeclinedAt = &now
	}
	_, err := db.Exec(ctx, `INSERT INTO consents (id, visit_id, patient_id, participant_id, kind, given_at, declined_at)
		VALUES ($1, $2, (SELECT patient_id FROM visits WHERE id = $2), $3, 'recording', $4, $5)`,
		c.ID, string(visit), string(participant), c.GivenAt, c.DeclinedAt)
	if err != nil {
		return Consent{}, fmt.Errorf("store: record consent: %w", err)
	}
	return c, nil
}

// LatestConsent returns the newest recording consent answer of visit.
func LatestConsent(ctx context.Context, db DBTX, visit ids.VisitID) (Consent, bool, error) {
	var c Consent
	var v, p string
	err := db.QueryRow(ctx, `SELECT id::text, visit_id::text, participant_id::text, kind, given_at, declined_at, withdrawn_at
		FROM consents WHERE visit_id = $1 AND kind = 'recording'
		ORDER BY COALESCE(given_at, declined_at) DESC, id LIMIT 1`, string(visit)).
		Scan(&c.ID, &v, &p, &c.Kind, &c.GivenAt, &c.DeclinedAt, &c.WithdrawnAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Consent{}, false, nil
	}
	if err != nil {
		return Consent{}, false, fmt.Errorf("store: consent: %w", err)
	}
	c.VisitID, c.ParticipantID = ids.VisitID(v), ids.ParticipantID(p)
	return c, true, nil
}

// WithdrawConsent marks every consent in force for visit withdrawn and
// returns how many there were.
func WithdrawConsent(ctx context.Context, db DBTX, visit ids.VisitID, now time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE consents SET withdrawn_at = $2
		WHERE visit_id = $1 AND kind = 'recording' AND given_at IS NOT NULL AND withdrawn_at IS NULL`, string(visit), now)
	if err != nil {
		return 0, fmt.Errorf("store: withdraw consent: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Recording is one participant's encrypted media for one start..stop.
type Recording struct {
	ID              string            `json:"id"`
	VisitID         ids.VisitID       `json:"visit_id"`
	PatientID       string            `json:"patient_id,omitempty"`
	ParticipantID   ids.ParticipantID `json:"participant_id"`
	ParticipantRole string            `json:"participant_role"`
	KEKID           string            `json:"-"`
	WrappedDEK      []byte            `json:"-"`
	SegmentSize     int               `json:"segment_size"`
	Status          string            `json:"status"`
	StartedAt       time.Time         `json:"started_at"`
	EndedAt         *time.Time        `json:"ended_at,omitempty"`
	Size            int64             `json:"size"`
	LegalHold       bool              `json:"legal_hold"`
	DeleteAfter     time.Time         `json:"delete_after"`
	DeletedAt       *time.Time        `json:"deleted_at,omitempty"`
	// HeartbeatAt is when its recorder last renewed it: for a recording
	// interrupted by a recorder's death, about when that recorder died
	// (internal/recordings joins such a piece with the one that follows).
	HeartbeatAt time.Time `json:"-"`
}

const recordingColumns = `r.id::text, r.visit_id::text, COALESCE(v.patient_id::text, ''), r.participant_id::text, r.participant_role,
	COALESCE(r.kek_id, ''), r.wrapped_dek, r.segment_size, r.status, r.started_at, r.ended_at, r.size, r.legal_hold,
	r.delete_after, r.deleted_at, r.heartbeat_at`

func scanRecording(row pgx.Row) (Recording, error) {
	var r Recording
	var v, p string
	err := row.Scan(&r.ID, &v, &r.PatientID, &p, &r.ParticipantRole, &r.KEKID, &r.WrappedDEK, &r.SegmentSize,
		&r.Status, &r.StartedAt, &r.EndedAt, &r.Size, &r.LegalHold, &r.DeleteAfter, &r.DeletedAt, &r.HeartbeatAt)
	r.VisitID, r.ParticipantID = ids.VisitID(v), ids.ParticipantID(p)
	return r, notFound(err)
}

// NewRecording describes a recording to create.
type NewRecording struct {
	ID              string
	VisitID         ids.VisitID
	ParticipantID   ids.ParticipantID
	ParticipantRole string
	KEKID           string
	WrappedDEK      []byte
	SegmentSize     int
	StartedAt       time.Time
	DeleteAfter     time.Time
	RecorderNode    string
}

// CreateRecording inserts a recording in status recording.
func CreateRecording(ctx context.Context, db DBTX, n NewRecording) error {
	_, err := db.Exec(ctx, `INSERT INTO recordings (id, visit_id, participant_id, participant_role, kek_id, wrapped_dek,
		segment_size, status, started_at, heartbeat_at, delete_after, recorder_node)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'recording', $8, $8, $9, $10)`,
		n.ID, string(n.VisitID), string(n.ParticipantID), n.ParticipantRole, n.KEKID, n.WrappedDEK,
		n.SegmentSize, n.StartedAt, n.DeleteAfter, n.RecorderNode)
	if err != nil {
		return fmt.Errorf("store: create recording: %w", err)
	}
	return nil
}

// RecordingByID finds a recording.
func RecordingByID(ctx context.Context, db DBTX, id string) (Recording, error) {
	if !ids.Valid(id) {
		return Recording{}, ErrNotFound
	}
	return scanRecording(db.QueryRow(ctx, `SELECT `+recordingColumns+`
		FROM recordings r JOIN visits v ON v.id = r.visit_id WHERE r.id = $1`, id))
}

// RecordingFilter narrows ListRecordings. Empty fields do not filter.
type RecordingFilter struct {
	VisitID   ids.VisitID
	PatientID string
	Provider  ids.UserID // only visits of this provider (or with an active break-glass grant)
	From, To  *time.Time // started_at in [From, To)
	Now       time.Time
	Limit     int
}

// ListRecordings lists recordings, newest first.
func ListRecordings(ctx context.Context, db DBTX, f RecordingFilter) ([]Recording, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := db.Query(ctx, `SELECT `+recordingColumns+`
		FROM recordings r JOIN visits v ON v.id = r.visit_id
		WHERE ($1 = '' OR r.visit_id::text = $1)
		  AND ($2 = '' OR v.patient_id::text = $2)
		  AND ($3 = '' OR v.provider_id::text = $3
		       OR EXISTS (SELECT 1 FROM break_glass b WHERE b.visit_id = r.visit_id AND b.user_id::text = $3 AND b.expires_at > $6))
		  AND ($4::timestamptz IS NULL OR r.started_at >= $4)
		  AND ($5::timestamptz IS NULL OR r.started_at < $5)
		ORDER BY r.started_at DESC, r.id LIMIT $7`,
		string(f.VisitID), f.PatientID, string(f.Provider), f.From, f.To, f.Now, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: list recordings: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Recording, error) { return scanRecording(r) })
}

// HeartbeatRecordings refreshes the lease of recordings a live recorder holds.
func HeartbeatRecordings(ctx context.Context, db DBTX, idList []string, now time.Time) error {
	if len(idList) == 0 {
		return nil
	}
	_, err := db.Exec(ctx, `UPDATE recordings SET heartbeat_at = $2 WHERE id::text = ANY($1) AND status IN ('recording', 'finalizing')`, idList, now)
	if err != nil {
		return fmt.Errorf("store: heartbeat: %w", err)
	}
	return nil
}

// SetRecordingStatus records a recording's end state. It applies only to
// a recording still being recorded or finalized: one the sweep or a
// takeover marked incomplete (its recorder counted dead) stays so, even if
// that recorder was only slow and finalizes late, so that recovery's
// account of it is the one kept.
func SetRecordingStatus(ctx context.Context, db DBTX, id, status string, ended *time.Time) error {
	_, err := db.Exec(ctx, `UPDATE recordings SET status = $2, ended_at = COALESCE($3, ended_at),
		size = (SELECT COALESCE(sum(size), 0) FROM recording_chunks WHERE recording_id = $1 AND status = 'complete')
		WHERE id = $1 AND status IN ('recording', 'finalizing')`, id, status, ended)
	if err != nil {
		return fmt.Errorf("store: recording status: %w", err)
	}
	return nil
}

// MarkOrphanedRecordings marks recordings whose recorder stopped
// heartbeating before cutoff incomplete. It returns the IDs it marked.
// Their unfinished chunks are left to recovery (RecoverableChunk).
func MarkOrphanedRecordings(ctx context.Context, db DBTX, cutoff time.Time) ([]string, error) {
	marked, err := queryStrings(ctx, db, "orphaned recordings", `UPDATE recordings SET status = 'incomplete', ended_at = COALESCE(ended_at, heartbeat_at),
		size = (SELECT COALESCE(sum(size), 0) FROM recording_chunks WHERE recording_id = recordings.id AND status = 'complete')
		WHERE status IN ('recording', 'finalizing') AND heartbeat_at < $1 RETURNING id::text`, cutoff)
	if err != nil {
		return nil, err
	}
	// Their unfinished chunks stay 'uploading': recovery (recording/recover.go)
	// completes what reached storage, or marks them lost.
	return marked, nil
}

// Chunk is one encrypted object of a recording.
type Chunk struct {
	RecordingID string     `json:"-"`
	Seq         int        `json:"seq"`
	ObjectKey   string     `json:"-"`
	Header      []byte     `json:"-"`
	Size        int64      `json:"size"`
	SHA256      []byte     `json:"sha256,omitempty"`
	Status      string     `json:"status"`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	DurationMS  int64      `json:"duration_ms"`
	// Truncated: completed by crash recovery without its final segment;
	// PlaintextSize is the authenticated prefix that is served.
	Truncated     bool  `json:"truncated"`
	PlaintextSize int64 `json:"-"`
	// UploadID is the open multipart upload of a chunk still uploading.
	UploadID string `json:"-"`
	// IntegrityFailedAt: the object failed authentication when read.
	IntegrityFailedAt *time.Time `json:"integrity_failed_at,omitempty"`
}

// AddChunk inserts a chunk in status uploading.
func AddChunk(ctx context.Context, db DBTX, c Chunk) error {
	_, err := db.Exec(ctx, `INSERT INTO recording_chunks (recording_id, seq, object_key, header, started_at)
		VALUES ($1, $2, $3, $4, $5)`, c.RecordingID, c.Seq, c.ObjectKey, c.Header, c.StartedAt)
	if err != nil {
		return fmt.Errorf("store: add chunk: %w", err)
	}
	return nil
}

// FinishChunk records a chunk's uploaded object (status complete) or its
// loss (status lost). A chunk that is no longer uploading (recovery
// finished it first) is left as it is.
func FinishChunk(ctx context.Context, db DBTX, c Chunk) error {
	_, err := db.Exec(ctx, `UPDATE recording_chunks SET status = $3, size = $4, sha256 = $5, ended_at = $6, duration_ms = $7,
		upload_id = NULL WHERE recording_id = $1 AND seq = $2 AND status = 'uploading'`,
		c.RecordingID, c.Seq, c.Status, c.Size, c.SHA256, c.EndedAt, c.DurationMS)
	if err != nil {
		return fmt.Errorf("store: finish chunk: %w", err)
	}
	return nil
}

// ChunksOf lists a recording's chunks in order.
func ChunksOf(ctx context.Context, db DBTX, recording string) ([]Chunk, error) {
	rows, err := db.Query(ctx, `SELECT `+chunkColumns+` FROM recording_chunks c WHERE recording_id = $1 ORDER BY seq`, recording)
	if err != nil {
		return nil, fmt.Errorf("store: chunks: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Chunk, error) { return scanChunk(r) })
}

// SetLegalHold sets or clears a recording's legal hold.
func SetLegalHold(ctx context.Context, db DBTX, id string, hold bool) error {
	tag, err := db.Exec(ctx, `UPDATE recordings SET legal_hold = $2 WHERE id = $1 AND status <> 'deleted'`, id, hold)
	if err != nil {
		return fmt.Errorf("store: legal hold: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RecordingsDue lists recordings past their retention, not on legal hold,
// not being recorded, not yet deleted.
func RecordingsDue(ctx context.Context, db DBTX, now time.Time, limit int) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT id::text FROM recordings
		WHERE delete_after <= $1 AND NOT legal_hold AND status IN ('complete', 'incomplete')
		ORDER BY delete_after LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recordings due: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// DestroyRecordingKey deletes a recording's wrapped data key (after which
// its objects cannot be decrypted) and marks it deleted. It locks the row
// and re-checks the legal hold; false means it was not eligible.
func DestroyRecordingKey(ctx context.Context, db DBTX, id string, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE recordings SET wrapped_dek = NULL, kek_id = NULL, status = 'deleted', deleted_at = $2
		WHERE id = $1 AND NOT legal_hold AND status IN ('complete', 'incomplete') AND delete_after <= $2`, id, now)
	if err != nil {
		return false, fmt.Errorf("store: destroy key: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// ChunksToRemove lists objects of deleted recordings still in storage.
func ChunksToRemove(ctx context.Context, db DBTX, limit int) ([]Chunk, error) {
	rows, err := db.Query(ctx, `SELECT c.recording_id::text, c.seq, c.object_key FROM recording_chunks c
		JOIN recordings r ON r.id = c.recording_id
		WHERE r.status = 'deleted' AND c.status <> 'deleted' LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: chunks to remove: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Chunk, error) {
		var c Chunk
		err := r.Scan(&c.RecordingID, &c.Seq, &c.ObjectKey)
		return c, err
	})
}

// MarkChunkRemoved records that a chunk's object is gone from storage.
func MarkChunkRemoved(ctx context.Context, db DBTX, recording string, seq int) error {
	_, err := db.Exec(ctx, `UPDATE recording_chunks SET status = 'deleted' WHERE recording_id = $1 AND seq = $2`, recording, seq)
	if err != nil {
		return fmt.Errorf("store: chunk removed: %w", err)
	}
	return nil
}

// KEKUsage counts the stored data keys wrapped under each KEK: the
// recordings' and the PHI fields' (phi_data_keys).
func KEKUsage(ctx context.Context, db DBTX) (map[string]int64, error) {
	rows, err := db.Query(ctx, `SELECT kek_id, count(*) FROM (
		SELECT kek_id FROM recordings WHERE kek_id IS NOT NULL
		UNION ALL SELECT kek_id FROM phi_data_keys) k GROUP BY kek_id`)
	if err != nil {
		return nil, fmt.Errorf("store: kek usage: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("store: kek usage: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// WrappedKey is a recording's envelope.
type WrappedKey struct {
	RecordingID string
	KEKID       string
	WrappedDEK  []byte
}

// KeysNotUnder lists up to limit wrapped keys whose KEK is not kek, locking
// the rows (FOR UPDATE SKIP LOCKED) for a rewrap in the same transaction.
func KeysNotUnder(ctx context.Context, tx pgx.Tx, kek string, limit int) ([]WrappedKey, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, kek_id, wrapped_dek FROM recordings
		WHERE kek_id IS NOT NULL AND kek_id <> $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`, kek, limit)
	if err != nil {
		return nil, fmt.Errorf("store: keys to rewrap: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (WrappedKey, error) {
		var k WrappedKey
		err := r.Scan(&k.RecordingID, &k.KEKID, &k.WrappedDEK)
		return k, err
	})
}

// ReplaceKey stores a re-wrapped key, if the row still holds the old one.
func ReplaceKey(ctx context.Context, db DBTX, id, oldKEK, newKEK string, wrapped []byte) error {
	_, err := db.Exec(ctx, `UPDATE recordings SET kek_id = $3, wrapped_dek = $4 WHERE id = $1 AND kek_id = $2`, id, oldKEK, newKEK, wrapped)
	if err != nil {
		return fmt.Errorf("store: replace key: %w", err)
	}
	return nil
}
