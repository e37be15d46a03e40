package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/ids"
)

// A visit's recording follows one state machine, kept in recording_controls
// and derived by RecordingControl.State; every path goes through the
// functions of this file.
//
//	off ──start (consent in force, visit open)──▶ starting
//	starting ──the recorder reports media written──▶ recording
//	starting ──no media within NoMediaAfter──▶ not_working
//	recording ──no media for MediaLostAfter──▶ not_working ──media again──▶ recording
//	any ──stop, consent declined or withdrawn, visit ended/cancelled/expired──▶ off
//
// "Recording" is shown only in state recording: a fact the recorder reports
// (ReportRecordingMedia), not the switch. While the switch is on, one
// recorder holds a lease on the visit (ClaimRecording): a claim is a single
// UPDATE, so no two recorders — nor two loops of one — record a visit.
const (
	RecStateOff        = "off"
	RecStateStarting   = "starting"
	RecStateRecording  = "recording"
	RecStateNotWorking = "not_working"
)

// Timings of the state machine.
const (
	// NoMediaAfter: a recording started this long ago with no media
	// written is not working.
	NoMediaAfter = 8 * time.Second
	// MediaLostAfter: a recording whose last media was written this long
	// ago is not working (the recorder reports every second).
	MediaLostAfter = 6 * time.Second
	// ClaimLease: a claim not renewed for this long may be taken by another
	// recorder (the holder renews every second).
	ClaimLease = 5 * time.Second
)

// RecordingControl is a visit's recording switch and what the recorder
// reported.
type RecordingControl struct {
	VisitID      ids.VisitID
	RequestedBy  string
	RequestedAt  *time.Time
	Active       bool
	StartedAt    *time.Time
	StoppedAt    *time.Time
	StopReason   string
	MediaAt      *time.Time // the recorder last wrote media (this start)
	FirstMediaAt *time.Time
	AlertedAt    *time.Time // a not-working alert was raised (this start)
}

// State derives the recording's state at now.
func (c RecordingControl) State(now time.Time) string {
	switch {
	case !c.Active || c.StartedAt == nil:
		return RecStateOff
	case c.MediaAt != nil:
		if now.Sub(*c.MediaAt) <= MediaLostAfter {
			return RecStateRecording
		}
		return RecStateNotWorking
	case now.Sub(*c.StartedAt) < NoMediaAfter:
		return RecStateStarting
	}
	return RecStateNotWorking
}

const controlColumns = `visit_id::text, requested_by, requested_at, active, started_at, stopped_at, stop_reason,
	media_at, first_media_at, alerted_at`

func scanControl(r pgx.Row) (RecordingControl, error) {
	var c RecordingControl
	var v string
	err := r.Scan(&v, &c.RequestedBy, &c.RequestedAt, &c.Active, &c.StartedAt, &c.StoppedAt, &c.StopReason,
		&c.MediaAt, &c.FirstMediaAt, &c.AlertedAt)
	c.VisitID = ids.VisitID(v)
	return c, err
}

// RecordingControlOf returns visit's control row; a visit that never asked
// to record has the zero control (ok false).
func RecordingControlOf(ctx context.Context, db DBTX, visit ids.VisitID) (RecordingControl, bool, error) {
	c, err := scanControl(db.QueryRow(ctx, `SELECT `+controlColumns+` FROM recording_controls WHERE visit_id = $1`, string(visit)))
	if errors.Is(err, pgx.ErrNoRows) {
		return RecordingControl{VisitID: visit}, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("store: recording control: %w", err)
	}
	return c, true, nil
}

// RequestRecording records that by asked to record visit (a new request
// replaces an older one; consent is asked again).
func RequestRecording(ctx context.Context, db DBTX, visit ids.VisitID, by string, now time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO recording_controls (visit_id, requested_by, requested_at, updated_at)
		VALUES ($1, $2, $3, $3)
		ON CONFLICT (visit_id) DO UPDATE SET requested_by = $2, requested_at = $3, updated_at = $3`,
		string(visit), by, now)
	if err != nil {
		return fmt.Errorf("store: request recording: %w", err)
	}
	return nil
}

// StartRecording switches visit's recording on (off → starting): what the
// recorder reported of an earlier start is forgotten. It returns false when
// it was on already. The caller checks consent and that the visit is open.
func StartRecording(ctx context.Context, db DBTX, visit ids.VisitID, by string, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `INSERT INTO recording_controls (visit_id, active, started_by, started_at, updated_at)
		VALUES ($1, true, $2, $3, $3)
		ON CONFLICT (visit_id) DO UPDATE SET active = true, started_by = $2, started_at = $3, stopped_at = NULL,
			stop_reason = '', media_at = NULL, first_media_at = NULL, alerted_at = NULL, updated_at = $3
		WHERE NOT recording_controls.active`, string(visit), by, now)
	if err != nil {
		return false, fmt.Errorf("store: start recording: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// StopRecording switches visit's recording off (any → off) with reason.
// The recorder holding the claim sees it, finishes the recording and
// releases the claim. It returns false when it was off already.
func StopRecording(ctx context.Context, db DBTX, visit ids.VisitID, reason string, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE recording_controls SET active = false, stopped_at = $2, stop_reason = $3, updated_at = $2
		WHERE visit_id = $1 AND active`, string(visit), now, reason)
	if err != nil {
		return false, fmt.Errorf("store: stop recording: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// ActiveRecording is a visit the recorder should be in.
type ActiveRecording struct {
	VisitID ids.VisitID
	NodeID  ids.NodeID
	NodeURL string
	ClaimID string // the claim this recorder holds on it ("" when none)
	// TakenFrom is the recorder (its claim's recorder_node) whose lapsed
	// claim ClaimRecording took over; "" when nobody held the visit.
	TakenFrom string
}

// RecordingWork lists what a recorder holding claims mine should do: the
// visits it holds that are still on and open (with their current media
// node), and the visits on and open that nobody holds (or whose holder's
// lease lapsed), which it may try to claim. A visit that ended never
// appears: its switch went off in the transaction that ended it.
func RecordingWork(ctx context.Context, db DBTX, mine []string) (held, free []ActiveRecording, err error) {
	rows, err := db.Query(ctx, `SELECT c.visit_id::text, COALESCE(v.sfu_node_id, ''), COALESCE(n.url, ''),
			COALESCE(c.claim_id::text, ''), c.claim_id::text = ANY($1)
		FROM recording_controls c JOIN visits v ON v.id = c.visit_id LEFT JOIN sfu_nodes n ON n.id = v.sfu_node_id
		WHERE c.active AND v.status NOT IN ('completed', 'cancelled', 'no_show')
		  AND (c.claim_id IS NULL OR c.claim_id::text = ANY($1) OR c.heartbeat_at < now() - $2::interval)`,
		mine, ClaimLease)
	if err != nil {
		return nil, nil, fmt.Errorf("store: recording work: %w", err)
	}
	var a ActiveRecording
	var v, n string
	var ours bool
	_, err = pgx.ForEachRow(rows, []any{&v, &n, &a.NodeURL, &a.ClaimID, &ours}, func() error {
		a.VisitID, a.NodeID = ids.VisitID(v), ids.NodeID(n)
		if ours {
			held = append(held, a)
		} else {
			a.ClaimID = ""
			free = append(free, a)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: recording work: %w", err)
	}
	return held, free, nil
}

// ClaimRecording takes visit's lease for recorder node under claimID, if
// the switch is on, the visit open, and nobody holds a live lease: one
// atomic UPDATE, so of two claims at once exactly one wins. ok is false
// when the claim failed. When it took a lapsed lease over, a.TakenFrom
// names the holder that let it lapse (read from the row as it was before
// the UPDATE: old is the statement's snapshot of the row).
func ClaimRecording(ctx context.Context, db DBTX, visit ids.VisitID, node, claimID string) (a ActiveRecording, ok bool, err error) {
	var n string
	err = db.QueryRow(ctx, `UPDATE recording_controls c SET claim_id = $3, recorder_node = $2, heartbeat_at = now()
		FROM recording_controls old, visits v LEFT JOIN sfu_nodes n ON n.id = v.sfu_node_id
		WHERE c.visit_id = $1 AND old.visit_id = c.visit_id AND v.id = c.visit_id AND c.active
		  AND v.status NOT IN ('completed', 'cancelled', 'no_show')
		  AND (c.claim_id IS NULL OR c.heartbeat_at < now() - $4::interval)
		RETURNING COALESCE(v.sfu_node_id, ''), COALESCE(n.url, ''), CASE WHEN old.claim_id IS NULL THEN '' ELSE old.recorder_node END`,
		string(visit), node, claimID, ClaimLease).
		Scan(&n, &a.NodeURL, &a.TakenFrom)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("store: claim recording: %w", err)
	}
	a.VisitID, a.NodeID, a.ClaimID = visit, ids.NodeID(n), claimID
	return a, true, nil
}

// RenewClaims renews the leases of claims and returns those still held
// (a claim another recorder took over, or that was released, is gone).
func RenewClaims(ctx context.Context, db DBTX, claims []string) (map[string]bool, error) {
	held := map[string]bool{}
	if len(claims) == 0 {
		return held, nil
	}
	rows, err := db.Query(ctx, `UPDATE recording_controls SET heartbeat_at = now()
		WHERE claim_id::text = ANY($1) RETURNING claim_id::text`, claims)
	if err != nil {
		return nil, fmt.Errorf("store: renew claims: %w", err)
	}
	var id string
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { held[id] = true; return nil }); err != nil {
		return nil, fmt.Errorf("store: renew claims: %w", err)
	}
	return held, nil
}

// ReleaseClaim gives up claimID on visit (the recorder left it).
func ReleaseClaim(ctx context.Context, db DBTX, visit ids.VisitID, claimID string) error {
	_, err := db.Exec(ctx, `UPDATE recording_controls SET claim_id = NULL, recorder_node = '', heartbeat_at = NULL
		WHERE visit_id = $1 AND claim_id::text = $2`, string(visit), claimID)
	if err != nil {
		return fmt.Errorf("store: release claim: %w", err)
	}
	return nil
}

// ReportRecordingMedia records that the recorder holding each of claims
// wrote media at now, and returns the visits for which it is the first
// media of this start (starting → recording, for the audit trail).
func ReportRecordingMedia(ctx context.Context, db DBTX, claims []string, now time.Time) ([]ids.VisitID, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	rows, err := db.Query(ctx, `UPDATE recording_controls c SET media_at = $2, first_media_at = COALESCE(c.first_media_at, $2)
		FROM recording_controls old
		WHERE old.visit_id = c.visit_id AND c.claim_id::text = ANY($1) AND c.active
		RETURNING c.visit_id::text, old.first_media_at IS NULL`, claims, now)
	if err != nil {
		return nil, fmt.Errorf("store: report media: %w", err)
	}
	var first []ids.VisitID
	var v string
	var isFirst bool
	_, err = pgx.ForEachRow(rows, []any{&v, &isFirst}, func() error {
		if isFirst {
			first = append(first, ids.VisitID(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: report media: %w", err)
	}
	return first, nil
}

// RecordingsNotWorking lists the visits whose recording is on, not working
// at now (no media in time, or media stopped), and not yet alerted for this
// start; MarkRecordingAlerted records the alert.
func RecordingsNotWorking(ctx context.Context, db DBTX, now time.Time) ([]RecordingControl, error) {
	rows, err := db.Query(ctx, `SELECT `+controlColumns+` FROM recording_controls
		WHERE active AND alerted_at IS NULL AND (
			(media_at IS NULL AND started_at <= $1::timestamptz - $2::interval) OR media_at <= $1::timestamptz - $3::interval)`,
		now, NoMediaAfter, MediaLostAfter)
	if err != nil {
		return nil, fmt.Errorf("store: recordings not working: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RecordingControl, error) { return scanControl(r) })
}

// MarkRecordingAlerted records that visit's not-working alert was raised;
// false when another process did first.
func MarkRecordingAlerted(ctx context.Context, db DBTX, visit ids.VisitID, now time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE recording_controls SET alerted_at = $2 WHERE visit_id = $1 AND active AND alerted_at IS NULL`,
		string(visit), now)
	if err != nil {
		return false, fmt.Errorf("store: mark recording alerted: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}
