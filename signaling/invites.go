package signaling

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

const (
	// An invite opens this long before the scheduled start.
	inviteEarly = time.Hour
	// An unscheduled visit's invite lasts this long after creation.
	adhocInviteTTL = 12 * time.Hour
	// Wrong dates of birth before the invite locks (the provider re-issues).
	dobTries = 5
)

// InviteURL is the patient's one-time link; the secret rides in the fragment.
func InviteURL(publicURL, secret string) string {
	u, err := url.Parse(publicURL)
	if err != nil {
		return ""
	}
	u.Path, u.Fragment = "/join", "invite="+secret
	return u.String()
}

// inviteWindow is when an invite for v may be used.
func inviteWindow(v store.ScheduledVisit) (from, until time.Time) {
	if v.ScheduledStart != nil && v.ScheduledEnd != nil {
		return v.ScheduledStart.Add(-inviteEarly), *v.ScheduledEnd
	}
	return v.CreatedAt, v.CreatedAt.Add(adhocInviteTTL)
}

type createInviteRequest struct {
	Email bool `json:"email"`
}

// createInvite issues a new one-time link for the visit (revoking earlier
// ones) with a calendar file, and emails it when asked and configured.
func (s *Server) createInvite(c *gin.Context) {
	ctx := c.Request.Context()
	var req createInviteRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.DecodeJSON(c, &req); err != nil {
			s.abort(c, err)
			return
		}
	}
	if req.Email && s.p.Mailer == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "no_smtp", "Email is not configured on this server; send the link yourself."))
		return
	}
	var secret string
	var inv store.Invite
	v, ok := s.visitChange(c, actionInviteCreate, func(tx pgx.Tx, v store.ScheduledVisit) error {
		if store.Closed(v.Status) {
			return errVisitClosed
		}
		var err error
		inv, secret, err = store.CreateInvite(ctx, tx, v.ID, s.p.Now())
		return err
	})
	if !ok {
		return
	}
	link := InviteURL(s.p.PublicURL, secret)
	from, until := inviteWindow(v)
	ics := icsFor(v, link, s.p.Now())
	if req.Email && !s.emailInvite(c, v, link, ics) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{
		"invite_id": inv.ID, "invite_url": link, "usable_from": from, "usable_until": until,
		"ics": ics, "emailed": req.Email,
	})
}

// emailInvite sends the patient the link and the calendar file; false when
// it answered an error.
func (s *Server) emailInvite(c *gin.Context, v store.ScheduledVisit, link, ics string) bool {
	ctx := c.Request.Context()
	p, err := store.PatientByID(ctx, s.p.DB, v.PatientID)
	if err != nil || p.Email == "" {
		s.abort(c, httpx.E(httpx.KindInvalid, "no_patient_email", "The patient has no email address on record."))
		return false
	}
	if err := s.p.Mailer.Send(ctx, inviteMessage(v, p.Email, link, ics, principal(c).UserID)); err != nil {
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "smtp_failed", "The email could not be sent; send the link yourself.", err))
		return false
	}
	ev := s.visitEvent(c, actionInviteEmail, v.ID)
	ev.PatientID = v.PatientID
	s.auditLog(c, ev)
	return true
}

// inviteMessage is the invite email: the link, the time and the calendar
// file; no name, no reason for the visit.
func inviteMessage(v store.ScheduledVisit, to, link, ics string, by ids.UserID) Message {
	body := fmt.Sprintf("You have a video visit with your care provider.\r\n\r\nJoin from this link (it opens one hour before the visit):\r\n%s\r\n\r\n"+
		"You will be asked for your date of birth. No download or account is needed.\r\n", link)
	if v.ScheduledStart != nil {
		body += "\r\nVisit time: " + v.ScheduledStart.UTC().Format("Mon 2 Jan 2006 15:04 MST") + "\r\n"
	}
	m := Message{To: to, Subject: "Your video visit link", PatientID: v.PatientID, VisitID: v.ID, SentBy: by}
	if ics != "" {
		body += "\r\nThe attached calendar file (video-visit.ics) adds the visit to your calendar.\r\n"
		m.Attachments = []Attachment{{Name: "video-visit.ics", ContentType: "text/calendar; charset=utf-8; method=PUBLISH", Data: []byte(ics)}}
	}
	m.Body = body
	return m
}

func (s *Server) revokeInvite(c *gin.Context) {
	ctx := c.Request.Context()
	n := 0
	if _, ok := s.visitChange(c, actionInviteRevoke, func(tx pgx.Tx, v store.ScheduledVisit) error {
		var err error
		n, err = store.RevokeInvites(ctx, tx, v.ID, s.p.Now())
		return err
	}); ok {
		c.JSON(http.StatusOK, gin.H{"revoked": n})
	}
}

// icsFor builds a calendar file for the visit: the time and the link, no
// patient data (it travels by email and sits in calendars).
func icsFor(v store.ScheduledVisit, link string, now time.Time) string {
	if v.ScheduledStart == nil || v.ScheduledEnd == nil {
		return ""
	}
	esc := strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`)
	const f = "20060102T150405Z"
	lines := []string{
		"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//OpenVisit//Visits//EN", "METHOD:PUBLISH", "BEGIN:VEVENT",
		"UID:" + string(v.ID) + "@openvisit",
		"DTSTAMP:" + now.UTC().Format(f),
		"DTSTART:" + v.ScheduledStart.UTC().Format(f),
		"DTEND:" + v.ScheduledEnd.UTC().Format(f),
		"SUMMARY:Video visit",
		"DESCRIPTION:" + esc.Replace("Join from this link (opens one hour before): "+link),
		"URL:" + link,
		"END:VEVENT", "END:VCALENDAR",
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

type redeemInviteRequest struct {
	Invite      string `json:"invite"`
	DateOfBirth string `json:"date_of_birth"`
}

// Invite errors: each a clear message, none revealing whether a patient
// exists or what their date of birth is.
var (
	errInviteInvalid = httpx.E(httpx.KindNotFound, "invite_invalid", "This link is not valid. Ask your provider for a new one.")
	errInviteRevoked = httpx.E(httpx.KindNotFound, "invite_revoked", "This link was withdrawn. Ask your provider for a new one.")
	errInviteUsed    = httpx.E(httpx.KindConflict, "invite_used", "This link was already used on another device. Ask your provider for a new one.")
	errInviteLocked  = httpx.E(httpx.KindForbidden, "invite_locked", "Too many wrong dates of birth. Ask your provider for a new link.")
	errInviteEnded   = httpx.E(httpx.KindNotFound, "visit_ended", "This visit has ended.")
	errInviteExpired = httpx.E(httpx.KindNotFound, "invite_expired", "This link has expired. Ask your provider for a new one.")
	errWrongDOB      = httpx.E(httpx.KindInvalid, "wrong_date_of_birth", "That date of birth does not match our records. Check it and try again.")
)

// redeemInvite is the patient's way in: the invite secret and the date of
// birth open a patient session bound to this visit, in the waiting room.
// The same browser coming back (its session still valid) gets its place
// back; another device with the same link is refused.
func (s *Server) redeemInvite(c *gin.Context) {
	ctx := c.Request.Context()
	if !s.inviteAllowed(c) {
		s.auditLog(c, audit.Event{Action: actionInviteRedeem, ActorRole: string(access.Patient), ResourceType: "invite",
			Outcome: audit.Denied, Reason: "rate limited (address)"})
		return
	}
	var req redeemInviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if len(req.Invite) == 0 || len(req.Invite) > 64 || len(req.DateOfBirth) > 20 {
		s.abort(c, errInviteInvalid)
		return
	}
	now := s.p.Now()
	ev := audit.Event{Action: actionInviteRedeem, ActorRole: string(access.Patient), ResourceType: "invite",
		IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
	current := principal(c)
	var plain string
	var pid ids.ParticipantID
	var visit ids.VisitID
	var denied *httpx.Error
	err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		inv, err := store.InviteBySecret(ctx, tx, req.Invite)
		if errors.Is(err, store.ErrNotFound) {
			denied = errInviteInvalid
			return nil
		}
		if err != nil {
			return err
		}
		visit = inv.VisitID
		ev.ResourceID, ev.VisitID = inv.ID, string(inv.VisitID)
		v, err := store.ScheduledVisitByID(ctx, tx, inv.VisitID, true)
		if err != nil {
			return err
		}
		ev.PatientID = v.PatientID
		from, until := inviteWindow(v)
		switch {
		case store.Closed(v.Status):
			denied = errInviteEnded
		case inv.RevokedAt != nil: // before locked: a new link was issued
			denied = errInviteRevoked
		case inv.LockedAt != nil:
			denied = errInviteLocked
		case now.Before(from):
			denied = httpx.E(httpx.KindConflict, "too_early",
				"It is too early to join. The link opens at "+from.UTC().Format("15:04 MST on Mon 2 Jan")+", one hour before the visit.")
			denied.Details = map[string]any{"usable_from": from}
		case !now.Before(until):
			denied = errInviteExpired
		}
		if denied != nil {
			return nil
		}
		if inv.UsedAt != nil {
			// The browser that used it may come back while its session lives;
			// a patient who left the call returns to the waiting room.
			if current.Kind == access.Patient && current.VisitID == inv.VisitID {
				pid = current.ParticipantID
				tag, err := tx.Exec(ctx, `UPDATE participants SET state = 'waiting', waiting_at = $3, left_at = NULL
					WHERE visit_id = $1 AND id = $2 AND state = 'left'`, string(v.ID), string(pid), now)
				if err != nil {
					return err
				}
				if tag.RowsAffected() > 0 {
					return notifyVisit(ctx, tx, v.ID)
				}
				return nil
			}
			denied = errInviteUsed
			return nil
		}
		if v.PatientID == "" {
			denied = httpx.E(httpx.KindConflict, "no_patient", "This visit has no patient yet. Ask your provider.")
			return nil
		}
		p, err := store.PatientByID(ctx, tx, v.PatientID)
		if err != nil {
			return err
		}
		dob, ok := parseDOB(req.DateOfBirth, now)
		if !ok || dob.Format("2006-01-02") != p.DateOfBirth {
			locked, err := store.InviteDOBFailure(ctx, tx, inv.ID, now, dobTries)
			if err != nil {
				return err
			}
			ev.Outcome, ev.Reason = audit.Failure, "wrong date of birth"
			if err := audit.AppendTx(ctx, tx, ev); err != nil {
				return err
			}
			denied = &httpx.Error{Kind: errWrongDOB.Kind, Code: errWrongDOB.Code, Message: errWrongDOB.Message,
				Details: map[string]any{"tries_left": max(0, dobTries-inv.DOBFailures-1)}}
			if locked {
				denied = errInviteLocked
			}
			return nil
		}
		pid = ids.NewParticipantID()
		if err := store.AddWaitingPatient(ctx, tx, v.ID, pid, inv.ID, now); err != nil {
			return err
		}
		if err := store.UseInvite(ctx, tx, inv.ID, now); err != nil {
			return err
		}
		if v.Status == store.StatusScheduled {
			if err := store.SetVisitStatus(ctx, tx, v.ID, store.StatusWaiting, now); err != nil {
				return err
			}
		}
		var hash []byte
		if plain, hash, err = session.NewToken(); err != nil {
			return err
		}
		if err := store.CreateSession(ctx, tx, store.NewSession{IDHash: hash, Kind: store.SessionPatient, VisitID: v.ID,
			ParticipantID: pid, Now: now, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}); err != nil {
			return err
		}
		ev.ActorID, ev.Outcome = string(pid), audit.Success
		if err := audit.AppendTx(ctx, tx, ev); err != nil {
			return err
		}
		return notifyVisit(ctx, tx, v.ID)
	})
	if err != nil {
		s.abort(c, err)
		return
	}
	if denied != nil {
		if ev.Outcome == "" {
			ev.Outcome, ev.Reason = audit.Denied, denied.Code
			s.auditLog(c, ev)
		}
		s.abort(c, denied)
		return
	}
	if plain != "" {
		http.SetCookie(c.Writer, session.Cookie(SessionCookie, plain, s.p.Auth.Absolute))
	}
	c.JSON(http.StatusOK, gin.H{"visit_id": visit, "participant_id": pid})
}
