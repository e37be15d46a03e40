package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// chunkColumns are the columns scanChunk reads (of recording_chunks c).
const chunkColumns = `c.recording_id::text, c.seq, c.object_key, c.header, c.size, c.sha256, c.status, c.started_at,
	c.ended_at, c.duration_ms, c.truncated, COALESCE(c.plaintext_size, 0), COALESCE(c.upload_id, ''), c.integrity_failed_at`

func scanChunk(row pgx.Row) (Chunk, error) {
	var c Chunk
	err := row.Scan(&c.RecordingID, &c.Seq, &c.ObjectKey, &c.Header, &c.Size, &c.SHA256, &c.Status, &c.StartedAt,
		&c.EndedAt, &c.DurationMS, &c.Truncated, &c.PlaintextSize, &c.UploadID, &c.IntegrityFailedAt)
	return c, err
}

// SetChunkUpload stores the multipart upload a chunk's object is being
// uploaded with, so that recovery can find it after a crash.
func SetChunkUpload(ctx context.Context, db DBTX, recording string, seq int, uploadID string) error {
	_, err := db.Exec(ctx, `UPDATE recording_chunks SET upload_id = $3 WHERE recording_id = $1 AND seq = $2 AND status = 'uploading'`,
		recording, seq, uploadID)
	if err != nil {
		return fmt.Errorf("store: chunk upload: %w", err)
	}
	return nil
}

// OrphanRecordingsOfNode marks every unfinished recording of recorder node
// incomplete, whatever its lease: the node's recorder has just started, so
// nothing it recorded before is still being recorded. It returns their IDs.
func OrphanRecordingsOfNode(ctx context.Context, db DBTX, node string) ([]string, error) {
	return queryStrings(ctx, db, "orphan recordings of node", `UPDATE recordings SET status = 'incomplete', ended_at = COALESCE(ended_at, heartbeat_at)
		WHERE status IN ('recording', 'finalizing') AND recorder_node = $1 RETURNING id::text`, node)
}

// OrphanTakenOverRecordings marks incomplete, and returns, visit's
// unfinished recordings by recorder node that it stopped heartbeating
// before cutoff. The caller has just taken over the visit's recording
// claim from node (store.ClaimRecording succeeds only once the holder
// stopped renewing it for ClaimLease; the holder renews its claims and its
// recordings' heartbeat in the same beat), so these recordings belong to a
// recorder that died: their recovery need not wait for the sweep's longer
// lease (ClaimTakenOverChunk).
func OrphanTakenOverRecordings(ctx context.Context, db DBTX, visit ids.VisitID, node string, cutoff time.Time) ([]string, error) {
	return queryStrings(ctx, db, "orphan taken-over recordings", `UPDATE recordings SET status = 'incomplete', ended_at = COALESCE(ended_at, heartbeat_at),
		size = (SELECT COALESCE(sum(size), 0) FROM recording_chunks WHERE recording_id = recordings.id AND status = 'complete')
		WHERE visit_id = $1 AND recorder_node = $2 AND status IN ('recording', 'finalizing') AND heartbeat_at < $3
		RETURNING id::text`, string(visit), node, cutoff)
}

// RecoverableChunk is a chunk left uploading by a recorder that stopped,
// with what is needed to read its object.
type RecoverableChunk struct {
	Chunk
	RecordingStatus string
	VisitID         string
	KEKID           string
	WrappedDEK      []byte
	SegmentSize     int
}

// ClaimRecoverableChunk locks (FOR UPDATE SKIP LOCKED, until tx ends) one
// chunk still uploading whose recording is no longer being recorded: either
// recorded by node (this recorder, restarted) or orphaned before cutoff (its
// recorder stopped heartbeating then). ok is false when there is none.
// Holding the row lock for the recovery means a recorder that dies while
// recovering releases it, and two recorders never recover one chunk.
// Chunks whose object key is in skip are passed over (tried already).
func ClaimRecoverableChunk(ctx context.Context, tx pgx.Tx, node string, cutoff time.Time, skip []string) (RecoverableChunk, bool, error) {
	return claimChunk(ctx, tx, `(r.recorder_node = $2 OR r.heartbeat_at < $3)`, skip, node, cutoff)
}

// ClaimTakenOverChunk is ClaimRecoverableChunk for the recordings a
// takeover marked incomplete (OrphanTakenOverRecordings): one of their
// chunks still uploading, whatever the sweep's lease says.
func ClaimTakenOverChunk(ctx context.Context, tx pgx.Tx, recordings []string, skip []string) (RecoverableChunk, bool, error) {
	return claimChunk(ctx, tx, `r.id::text = ANY($2)`, skip, recordings)
}

// claimChunk locks one uploading chunk of a stopped recording that which
// (a condition on r, with parameters from $2) selects.
func claimChunk(ctx context.Context, tx pgx.Tx, which string, skip []string, args ...any) (RecoverableChunk, bool, error) {
	if skip == nil {
		skip = []string{}
	}
	var c RecoverableChunk
	var kek *string
	err := tx.QueryRow(ctx, `SELECT `+chunkColumns+`, r.status, r.visit_id::text, r.kek_id, r.wrapped_dek, r.segment_size
		FROM recording_chunks c JOIN recordings r ON r.id = c.recording_id
		WHERE c.status = 'uploading' AND r.status IN ('complete', 'incomplete') AND r.wrapped_dek IS NOT NULL
		  AND `+which+` AND NOT (c.object_key = ANY($1))
		ORDER BY c.started_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED`, append([]any{skip}, args...)...).
		Scan(&c.RecordingID, &c.Seq, &c.ObjectKey, &c.Header, &c.Size, &c.SHA256, &c.Status, &c.StartedAt,
			&c.EndedAt, &c.DurationMS, &c.Truncated, &c.PlaintextSize, &c.UploadID, &c.IntegrityFailedAt,
			&c.RecordingStatus, &c.VisitID, &kek, &c.WrappedDEK, &c.SegmentSize)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("store: claim recoverable chunk: %w", err)
	}
	if kek != nil {
		c.KEKID = *kek
	}
	return c, true, nil
}

// FinishRecoveredChunk records what recovery made of a chunk: complete
// (Truncated when its object has no final segment, with the PlaintextSize
// that is served) or lost. It applies only to a chunk still uploading.
func FinishRecoveredChunk(ctx context.Context, db DBTX, c Chunk) error {
	var ps *int64
	if c.Truncated {
		ps = &c.PlaintextSize
	}
	tag, err := db.Exec(ctx, `UPDATE recording_chunks SET status = $3, size = $4, sha256 = $5, ended_at = $6, duration_ms = $7,
		truncated = $8, plaintext_size = $9, upload_id = NULL
		WHERE recording_id = $1 AND seq = $2 AND status = 'uploading'`,
		c.RecordingID, c.Seq, c.Status, c.Size, c.SHA256, c.EndedAt, c.DurationMS, c.Truncated, ps)
	if err != nil {
		return fmt.Errorf("store: finish recovered chunk: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: finish recovered chunk %s/%d: %w", c.RecordingID, c.Seq, ErrNotFound)
	}
	return nil
}

// RefreshRecordingExtent recomputes a stopped recording's size (its
// complete chunks) and end (the end of its last complete chunk, or its
// start when nothing was kept) after recovery changed its chunks.
func RefreshRecordingExtent(ctx context.Context, db DBTX, recording string) error {
	_, err := db.Exec(ctx, `UPDATE recordings SET
		size = (SELECT COALESCE(sum(size), 0) FROM recording_chunks WHERE recording_id = $1 AND status = 'complete'),
		ended_at = COALESCE((SELECT max(ended_at) FROM recording_chunks WHERE recording_id = $1 AND status = 'complete'), started_at)
		WHERE id = $1 AND status NOT IN ('recording', 'finalizing', 'deleted')`, recording)
	if err != nil {
		return fmt.Errorf("store: refresh recording extent: %w", err)
	}
	return nil
}

// UploadingObjectKeys returns which of keys belong to chunks still
// uploading (their multipart uploads are in use or awaiting recovery).
func UploadingObjectKeys(ctx context.Context, db DBTX, keys []string) (map[string]bool, error) {
	found, err := queryStrings(ctx, db, "uploading object keys", `SELECT object_key FROM recording_chunks WHERE status = 'uploading' AND object_key = ANY($1)`, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(found))
	for _, k := range found {
		out[k] = true
	}
	return out, nil
}

// MarkChunkIntegrityFailed records that a chunk's object failed
// authentication. It returns true only for the call that recorded it
// first (so one failure raises one alert).
func MarkChunkIntegrityFailed(ctx context.Context, db DBTX, recording string, seq int, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE recording_chunks SET integrity_failed_at = $3
		WHERE recording_id = $1 AND seq = $2 AND integrity_failed_at IS NULL`, recording, seq, now)
	if err != nil {
		return false, fmt.Errorf("store: chunk integrity failure: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}
