package signaling

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/visits"
)

// listVisits answers the provider's day/week list: ?from=&to= (RFC 3339),
// default today to a week ahead. The list shows patient names, audited per
// patient before it leaves (visits.Scheduler.List).
func (s *Server) listVisits(c *gin.Context) {
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
	base := s.visitEvent(c, actionVisitList, "")
	base.Reason = "schedule " + from.UTC().Format(time.RFC3339) + " to " + to.UTC().Format(time.RFC3339)
	list, err := s.scheduler().List(c.Request.Context(), principal(c).UserID, from, to, base)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"visits": list, "from": from, "to": to})
}

type scheduleRequest struct {
	PatientID       string `json:"patient_id"`
	Start           string `json:"start"`
	DurationMinutes int    `json:"duration_minutes"`
	Reason          string `json:"reason"`
}

var errBadStart = httpx.E(httpx.KindInvalid, "bad_start", "Start must be an RFC 3339 time, e.g. 2026-03-01T09:30:00-05:00.")

// createVisit starts an unscheduled visit now (empty body), or schedules one
// with a patient, a start, a duration and a reason (visits.Scheduler).
func (s *Server) createVisit(c *gin.Context) {
	var req scheduleRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.DecodeJSON(c, &req); err != nil {
			s.abort(c, err)
			return
		}
	}
	ctx, p := c.Request.Context(), principal(c)
	ev := s.visitEvent(c, actionVisitCreate, "")
	var id ids.VisitID
	var err error
	if req.PatientID == "" && req.Start == "" {
		id, err = s.scheduler().StartNow(ctx, p.UserID, ev)
	} else {
		start, perr := time.Parse(time.RFC3339, req.Start)
		if perr != nil {
			s.abort(c, errBadStart)
			return
		}
		id, err = s.scheduler().Schedule(ctx, visits.Booking{Provider: p.UserID, Patient: req.PatientID, Start: start,
			Duration: time.Duration(req.DurationMinutes) * time.Minute, Reason: req.Reason, Event: ev})
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	s.replyVisit(c, http.StatusCreated, id)
}

// scheduler is the scheduling domain on this server's database and nodes.
func (s *Server) scheduler() *visits.Scheduler {
	return &visits.Scheduler{Env: s.env(), Place: s.placement()}
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
	start, err := time.Parse(time.RFC3339, req.Start)
	if err != nil {
		s.abort(c, errBadStart)
		return
	}
	w, err := visits.NewWindow(start, time.Duration(req.DurationMinutes)*time.Minute, s.p.Now())
	if err != nil {
		s.abort(c, err)
		return
	}
	ctx := c.Request.Context()
	if v, ok := s.visitChange(c, actionVisitReschedule, func(tx pgx.Tx, v store.ScheduledVisit) error {
		return visits.Reschedule(ctx, tx, v, w)
	}); ok {
		s.replyVisit(c, http.StatusOK, v.ID)
	}
}

// closeVisit ends a visit for everyone (visits.End, then visits.Close:
// invites, patient sessions, recording and, through the revocation path,
// every call on every media node). The patient's page sees "ended" and the
// link no longer works.
func (s *Server) closeVisit(c *gin.Context, action, status string) {
	ctx := c.Request.Context()
	now := s.p.Now()
	v, ok := s.visitChange(c, action, func(tx pgx.Tx, v store.ScheduledVisit) error {
		return visits.End(ctx, tx, v, status, now)
	})
	if !ok {
		return
	}
	s.replyVisit(c, http.StatusOK, v.ID)
}

func (s *Server) endVisit(c *gin.Context) { s.closeVisit(c, actionVisitEnd, store.StatusCompleted) }

func (s *Server) cancelVisit(c *gin.Context) {
	s.closeVisit(c, actionVisitCancel, store.StatusCancelled)
}

func (s *Server) noShowVisit(c *gin.Context) { s.closeVisit(c, actionVisitNoShow, store.StatusNoShow) }
