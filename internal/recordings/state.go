package recordings

import (
	"context"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// State is what both sides' recording indicator shows. Pages poll GET
// /api/v1/visits/:visit_id/recording (every 2 s is plenty; it is not
// audited, it holds no PHI). Status is the recording's state
// (store.RecordingControl.State): the indicator says "Recording" only in
// "recording", which the recorder reports once it writes media.
type State struct {
	VisitID ids.VisitID `json:"visit_id"`
	// Requested: the provider asked to record and the patient has not
	// answered that request yet.
	Requested   bool       `json:"requested"`
	RequestedAt *time.Time `json:"requested_at,omitempty"`
	// Consent is none, given, declined or withdrawn (the latest answer).
	Consent   string     `json:"consent"`
	ConsentAt *time.Time `json:"consent_at,omitempty"`
	// Recording is true while the switch is on (the recorder should be
	// recording); Status says whether it is.
	Recording bool `json:"recording"`
	// Status is off, starting, recording or not_working.
	Status     string     `json:"status"`
	MediaAt    *time.Time `json:"media_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	StoppedAt  *time.Time `json:"stopped_at,omitempty"`
	StopReason string     `json:"stop_reason,omitempty"`
	// AwaitingConsent: the recording is paused until someone who joined
	// after it started answers (store.StopAwaitingConsent).
	AwaitingConsent bool `json:"awaiting_consent,omitempty"`
}

// State returns visit v's recording state.
func (s *Service) State(ctx context.Context, v ids.VisitID) (State, error) {
	return stateOf(ctx, s.DB, v, s.Now())
}

// StateFor is State as invitee viewer sees it: Requested says whether
// they have yet to answer the request (someone who joined after the others
// answered is asked too).
func (s *Service) StateFor(ctx context.Context, v ids.VisitID, viewer ids.ParticipantID) (State, error) {
	st, err := stateOf(ctx, s.DB, v, s.Now())
	if err != nil || viewer == "" || st.RequestedAt == nil {
		return st, err
	}
	answered, err := store.AnsweredSince(ctx, s.DB, v, viewer, *st.RequestedAt)
	st.Requested = !answered
	return st, err
}

func stateOf(ctx context.Context, db store.DBTX, v ids.VisitID, now time.Time) (State, error) {
	st := State{VisitID: v, Consent: "none"}
	ctl, _, err := store.RecordingControlOf(ctx, db, v)
	if err != nil {
		return st, err
	}
	con, has, err := store.LatestConsent(ctx, db, v)
	if err != nil {
		return st, err
	}
	st.RequestedAt, st.Recording, st.StartedAt, st.StoppedAt, st.StopReason = ctl.RequestedAt, ctl.Active, ctl.StartedAt, ctl.StoppedAt, ctl.StopReason
	st.Status, st.MediaAt = ctl.State(now), ctl.MediaAt
	st.AwaitingConsent = !ctl.Active && ctl.StopReason == store.StopAwaitingConsent
	if has {
		switch {
		case con.WithdrawnAt != nil:
			st.Consent, st.ConsentAt = "withdrawn", con.WithdrawnAt
		case con.GivenAt != nil:
			st.Consent, st.ConsentAt = "given", con.GivenAt
		default:
			st.Consent, st.ConsentAt = "declined", con.DeclinedAt
		}
	}
	answered := has && ctl.RequestedAt != nil && !answerTime(con).Before(*ctl.RequestedAt)
	st.Requested = ctl.RequestedAt != nil && !answered
	return st, nil
}

func answerTime(c store.Consent) time.Time {
	if c.GivenAt != nil {
		return *c.GivenAt
	}
	if c.DeclinedAt != nil {
		return *c.DeclinedAt
	}
	return time.Time{}
}
