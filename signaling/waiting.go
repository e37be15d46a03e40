package signaling

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/visits"
)

// VisitState is what a page shows of a visit: its status and, for the
// provider, who is waiting or in the call; for a patient, their own place.
type VisitState struct {
	VisitID      ids.VisitID         `json:"visit_id"`
	Status       string              `json:"status"`
	Start        *time.Time          `json:"scheduled_start,omitempty"`
	End          *time.Time          `json:"scheduled_end,omitempty"`
	PatientName  string              `json:"patient_name,omitempty"` // provider only
	Me           *store.Participant  `json:"me,omitempty"`           // patient only
	Participants []store.Participant `json:"participants,omitempty"` // provider only

	patientID string // whose name PatientName is: the audit entry names them
}

// snapshot reads the visit's state as principal p may see it.
func (s *Server) snapshot(ctx context.Context, p access.Principal, visit ids.VisitID) (VisitState, error) {
	v, err := store.ScheduledVisitByID(ctx, s.p.DB, visit, false)
	if err != nil {
		return VisitState{}, err
	}
	st := VisitState{VisitID: v.ID, Status: v.Status, Start: v.ScheduledStart, End: v.ScheduledEnd}
	if p.Kind == access.Patient {
		me, err := store.ParticipantByID(ctx, s.p.DB, visit, p.ParticipantID)
		if err != nil {
			return VisitState{}, err
		}
		st.Me = &me
		return st, nil
	}
	st.PatientName, st.patientID = v.PatientName, v.PatientID
	if st.Participants, err = store.Participants(ctx, s.p.DB, visit); err != nil {
		return VisitState{}, err
	}
	return st, nil
}

// stateEvent audits a provider's view of the visit state, naming the
// patient it shows (patients.RecordShown). A patient's own view shows no one else and
// is not audited here.
func (s *Server) stateEvent(c *gin.Context, st VisitState) error {
	if principal(c).Kind == access.Patient {
		return nil
	}
	ev := s.visitEvent(c, actionVisitView, st.VisitID)
	ev.PatientID = st.patientID
	return s.p.DB.Audit().Append(c.Request.Context(), ev)
}

func (s *Server) visitState(c *gin.Context) {
	visit := ids.VisitID(c.Param("visit_id"))
	st, err := s.snapshot(c.Request.Context(), principal(c), visit)
	if err != nil {
		s.abort(c, err)
		return
	}
	if err := s.stateEvent(c, st); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	c.JSON(http.StatusOK, st)
}

// sseHeartbeat keeps proxies from closing an idle stream and bounds how long
// a revoked session's stream can linger.
const sseHeartbeat = 15 * time.Second

// sseReaudit: a stream held open keeps showing its patient; a snapshot sent
// this long after the stream's last audit entry writes a new one, so that a
// breach window that starts after the stream opened still counts it.
const sseReaudit = 15 * time.Minute

// streamAudit decides which snapshots of an event stream are audited: the
// first (before its first byte), then one that shows another patient than
// the last entry named, or comes sseReaudit after it. Heartbeats and
// unchanged snapshots write nothing, so a stream does not flood the trail.
type streamAudit struct {
	patient string
	at      time.Time
	done    bool
}

func (a *streamAudit) due(st VisitState, now time.Time) bool {
	return !a.done || st.patientID != a.patient || now.Sub(a.at) >= sseReaudit
}

func (a *streamAudit) record(st VisitState, now time.Time) {
	a.patient, a.at, a.done = st.patientID, now, true
}

// visitEvents streams the visit's state as server-sent events: a snapshot
// at once and after every change. It ends when the session ends (the
// patient then sees why: removed, turned away or ended), or when a snapshot
// that must be audited cannot be.
func (s *Server) visitEvents(c *gin.Context) {
	ctx := c.Request.Context()
	p := principal(c)
	visit := ids.VisitID(c.Param("visit_id"))
	var audited streamAudit
	// note audits st when it is due; an error refuses st.
	note := func(st VisitState) error {
		now := s.p.Now()
		if !audited.due(st, now) {
			return nil
		}
		if err := s.stateEvent(c, st); err != nil {
			return err
		}
		audited.record(st, now)
		return nil
	}
	st, err := s.snapshot(ctx, p, visit)
	if err != nil {
		s.abort(c, err)
		return
	}
	if err := note(st); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	notices, cancel := s.events.subscribe(visit)
	defer cancel()
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	s.streamStates(c, st, notices, note)
}

// streamStates writes first, then a fresh snapshot (audited by note) after
// every notice, with heartbeats between, until the stream or the session
// ends, the visit or the patient's place ends, or note refuses a snapshot.
func (s *Server) streamStates(c *gin.Context, first VisitState, notices <-chan struct{}, note func(VisitState) error) {
	ctx := c.Request.Context()
	p := principal(c)
	send := func(st VisitState) bool {
		b, _ := json.Marshal(st)
		if _, err := c.Writer.Write(append(append([]byte("event: state\ndata: "), b...), '\n', '\n')); err != nil {
			return false
		}
		c.Writer.Flush()
		return !store.Closed(st.Status) && (st.Me == nil || st.Me.State == "waiting" || st.Me.State == "admitted")
	}
	if !send(first) {
		return
	}
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-notices:
			st, err := s.snapshot(ctx, p, first.VisitID)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("visit events: snapshot failed; the stream ends", "visit", string(first.VisitID), "err", err)
				}
				return
			}
			if err := note(st); err != nil {
				s.auditFailed(ctx, actionVisitView, err)
				return
			}
			if !send(st) {
				return
			}
		case <-tick.C:
			// The session's policy, applied as on every request (an
			// expired session is ended and audited there).
			if _, err := s.signin.Session(ctx, p.SessionHash, source(c)); err != nil {
				return
			}
			if _, err := c.Writer.Write([]byte(": ping\n\n")); err != nil {
				return
			}
			c.Writer.Flush()
		}
	}
}

// participantChange moves a waiting or admitted patient to state
// (visits.Move).
func (s *Server) participantChange(c *gin.Context, action, state string) {
	ctx := c.Request.Context()
	pid := ids.ParticipantID(c.Param("participant_id"))
	now := s.p.Now()
	_, ok := s.visitChange(c, action, func(tx pgx.Tx, v store.ScheduledVisit) error {
		return visits.Move(ctx, tx, v, pid, state, now)
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{"participant_id": pid, "state": state})
}

func (s *Server) admitParticipant(c *gin.Context) {
	s.participantChange(c, actionAdmit, visits.Admitted)
}

func (s *Server) turnAwayParticipant(c *gin.Context) {
	s.participantChange(c, actionTurnAway, visits.TurnedAway)
}

func (s *Server) removeParticipant(c *gin.Context) {
	s.participantChange(c, actionRemove, visits.Removed)
}

// leaveVisit records that the caller left the call (their page's Leave
// button); a patient may rejoin while the visit runs.
func (s *Server) leaveVisit(c *gin.Context) {
	ctx := c.Request.Context()
	p := principal(c)
	visit := ids.VisitID(c.Param("visit_id"))
	now := s.p.Now()
	ev := s.visitEvent(c, actionVisitLeave, visit)
	err := s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		// A patient who leaves goes back through the waiting room to return
		// (the provider sees them leave); a dropped connection is not a leave.
		var provider ids.UserID
		if p.Kind == access.Provider {
			provider = p.UserID
		}
		if err := store.LeaveVisit(ctx, tx, visit, p.ParticipantID, provider, now); err != nil {
			return err
		}
		return notifyVisit(ctx, tx, visit)
	})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "left"})
}
