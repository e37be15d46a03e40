package signaling

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/visits"
)

const (
	minDuration = 5 * time.Minute
	maxDuration = 4 * time.Hour
	// A visit may be scheduled to start a little in the past (a provider
	// filling in "now"), never more.
	pastSlack = 5 * time.Minute
	// Schedules reach at most this far ahead.
	maxAhead = 366 * 24 * time.Hour
)

// listVisits answers the provider's day/week list: ?from=&to= (RFC 3339),
// default today to a week ahead. The list shows patient names: one audit
// entry per patient on it (or one for the empty list), committed before the
// list leaves (shown.go).
func (s *Server) listVisits(c *gin.Context) {
	ctx := c.Request.Context()
	now := s.p.Now()
	from := now.Add(-24 * time.Hour)
	to := now.Add(7 * 24 * time.Hour)
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.abort(c, httpx.E(httpx.KindInvalid, "bad_range", "from and to must be RFC 3339 times."))
				return
			}
			*dst = t
		}
	}
	if !to.After(from) || to.Sub(from) > 62*24*time.Hour {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_range", "The range must be positive and at most 62 days."))
		return
	}
	visits, err := store.ProviderSchedule(ctx, s.p.DB, principal(c).UserID, from, to)
	if err != nil {
		s.abort(c, err)
		return
	}
	base := s.visitEvent(c, actionVisitList, "")
	base.Reason = "schedule " + from.UTC().Format(time.RFC3339) + " to " + to.UTC().Format(time.RFC3339)
	patients := make([]string, len(visits))
	for i, v := range visits {
		patients[i] = v.PatientID
	}
	evs := shownEvents(base, patients)
	if len(evs) == 0 {
		evs = []audit.Event{base}
	}
	if err := s.p.DB.Audit().AppendAll(ctx, evs); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"visits": visits, "from": from, "to": to})
}

type scheduleRequest struct {
	PatientID       string `json:"patient_id"`
	Start           string `json:"start"`
	DurationMinutes int    `json:"duration_minutes"`
	Reason          string `json:"reason"`
}

func (s *Server) parseWindow(start string, minutes int) (time.Time, time.Time, *httpx.Error) {
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return t, t, httpx.E(httpx.KindInvalid, "bad_start", "Start must be an RFC 3339 time, e.g. 2026-03-01T09:30:00-05:00.")
	}
	d := time.Duration(minutes) * time.Minute
	now := s.p.Now()
	switch {
	case d < minDuration || d > maxDuration:
		return t, t, httpx.E(httpx.KindInvalid, "bad_duration", "A visit lasts 5 to 240 minutes.")
	case t.Before(now.Add(-pastSlack)):
		return t, t, httpx.E(httpx.KindInvalid, "in_the_past", "That time is in the past.")
	case t.After(now.Add(maxAhead)):
		return t, t, httpx.E(httpx.KindInvalid, "too_far_ahead", "Visits can be scheduled up to a year ahead.")
	}
	return t, t.Add(d), nil
}

var errOverlap = httpx.E(httpx.KindConflict, "overlap", "You already have a visit at that time.")

// createVisit starts an unscheduled visit now (empty body), or schedules one
// with a patient, a start, a duration and a reason. A scheduled visit's room
// exists from now on, closed to everyone until the rules open it.
func (s *Server) createVisit(c *gin.Context) {
	ctx := c.Request.Context()
	var req scheduleRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.DecodeJSON(c, &req); err != nil {
			s.abort(c, err)
			return
		}
	}
	p := principal(c)
	id := ids.NewVisitID()
	if req.PatientID == "" && req.Start == "" {
		err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
			node, err := s.placeNew(ctx, tx)
			if err != nil {
				return err
			}
			if err := store.CreateVisit(ctx, tx, id, p.UserID, node, nil, nil); err != nil {
				return err
			}
			if err := s.markPlaced(ctx, tx, id, node); err != nil {
				return err
			}
			return audit.AppendTx(ctx, tx, s.visitEvent(c, actionVisitCreate, id))
		})
		if err != nil {
			s.abort(c, err)
			return
		}
		s.replyVisit(c, http.StatusCreated, id)
		return
	}
	start, end, verr := s.parseWindow(req.Start, req.DurationMinutes)
	if verr != nil {
		s.abort(c, verr)
		return
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if utf8.RuneCountInString(req.Reason) > 500 {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_reason", "The reason is at most 500 characters."))
		return
	}
	err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		ok, err := store.PatientRelation(ctx, tx, p.UserID, req.PatientID)
		if err != nil {
			return err
		}
		if !ok {
			return httpx.E(httpx.KindInvalid, "unknown_patient", "No such patient among yours; create the patient first.")
		}
		// Serialize this provider's scheduling so two requests cannot both
		// pass the overlap check.
		if err := store.LockUser(ctx, tx, p.UserID); err != nil {
			return err
		}
		if clash, err := store.Overlaps(ctx, tx, p.UserID, start, end, ""); err != nil {
			return err
		} else if clash {
			return errOverlap
		}
		// A scheduled visit is placed again at its first join (by then the
		// least-loaded node may be another).
		node, err := s.placeNew(ctx, tx)
		if err != nil {
			return err
		}
		if err := store.ScheduleVisit(ctx, tx, id, p.UserID, req.PatientID, node, start, end, req.Reason); err != nil {
			return err
		}
		ev := s.visitEvent(c, actionVisitCreate, id)
		ev.PatientID = req.PatientID
		return audit.AppendTx(ctx, tx, ev)
	})
	if err != nil {
		s.abort(c, err)
		return
	}
	s.replyVisit(c, http.StatusCreated, id)
}

func (s *Server) replyVisit(c *gin.Context, status int, id ids.VisitID) {
	v, err := store.ScheduledVisitByID(c.Request.Context(), s.p.DB, id, false)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(status, v)
}

// visitChange runs change on the locked visit, with its audit entry and a
// change notice, in one transaction.
func (s *Server) visitChange(c *gin.Context, action string, change func(tx pgx.Tx, v store.ScheduledVisit) error) (store.ScheduledVisit, bool) {
	ctx := c.Request.Context()
	id := ids.VisitID(c.Param("visit_id"))
	var v store.ScheduledVisit
	ev := s.visitEvent(c, action, id)
	err := s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		if v, err = store.ScheduledVisitByID(ctx, tx, id, true); err != nil {
			return err
		}
		ev.PatientID = v.PatientID
		if err := change(tx, v); err != nil {
			return err
		}
		return notifyVisit(ctx, tx, id)
	})
	if err != nil {
		s.abort(c, err)
		return v, false
	}
	return v, true
}

type rescheduleRequest struct {
	Start           string `json:"start"`
	DurationMinutes int    `json:"duration_minutes"`
}

func (s *Server) rescheduleVisit(c *gin.Context) {
	var req rescheduleRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	start, end, verr := s.parseWindow(req.Start, req.DurationMinutes)
	if verr != nil {
		s.abort(c, verr)
		return
	}
	ctx := c.Request.Context()
	if _, ok := s.visitChange(c, actionVisitReschedule, func(tx pgx.Tx, v store.ScheduledVisit) error {
		if v.Status != store.StatusScheduled || v.ScheduledStart == nil {
			return httpx.E(httpx.KindConflict, "not_scheduled", "Only a scheduled visit that has not started can be moved.")
		}
		if clash, err := store.Overlaps(ctx, tx, v.ProviderID, start, end, v.ID); err != nil {
			return err
		} else if clash {
			return errOverlap
		}
		return store.Reschedule(ctx, tx, v.ID, start, end)
	}); ok {
		s.replyVisit(c, http.StatusOK, ids.VisitID(c.Param("visit_id")))
	}
}

// closeVisit ends a visit for everyone (visits.Close: invites, patient
// sessions, recording and, through the revocation path, every call on
// every media node). The patient's page sees "ended" and the link no
// longer works.
func (s *Server) closeVisit(c *gin.Context, action, status string, allowed func(store.ScheduledVisit) *httpx.Error) {
	ctx := c.Request.Context()
	now := s.p.Now()
	v, ok := s.visitChange(c, action, func(tx pgx.Tx, v store.ScheduledVisit) error {
		if e := allowed(v); e != nil {
			return e
		}
		return visits.Close(ctx, tx, v.ID, status, now)
	})
	if !ok {
		return
	}
	s.replyVisit(c, http.StatusOK, v.ID)
}

func (s *Server) endVisit(c *gin.Context) {
	s.closeVisit(c, actionVisitEnd, store.StatusCompleted, func(v store.ScheduledVisit) *httpx.Error {
		if store.Closed(v.Status) {
			return errVisitClosed
		}
		return nil
	})
}

func (s *Server) cancelVisit(c *gin.Context) {
	s.closeVisit(c, actionVisitCancel, store.StatusCancelled, func(v store.ScheduledVisit) *httpx.Error {
		if v.Status != store.StatusScheduled && v.Status != store.StatusWaiting {
			return httpx.E(httpx.KindConflict, "not_cancellable", "Only a visit that has not started can be cancelled.")
		}
		return nil
	})
}

func (s *Server) noShowVisit(c *gin.Context) {
	now := s.p.Now()
	s.closeVisit(c, actionVisitNoShow, store.StatusNoShow, func(v store.ScheduledVisit) *httpx.Error {
		if v.Status != store.StatusScheduled || v.ScheduledStart == nil || now.Before(*v.ScheduledStart) {
			return httpx.E(httpx.KindConflict, "not_no_show", "A visit is a no-show only after its start, if the patient never arrived.")
		}
		return nil
	})
}
