package signaling

import (
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
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
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
	from, until := invites.Window(v)
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

// redeemInvite is the patient's way in (invites.Service.Redeem): the invite
// secret and the date of birth open a patient session bound to this visit,
// in the waiting room. The same browser coming back (its session still
// valid) gets its place back; another device with the same link is refused.
func (s *Server) redeemInvite(c *gin.Context) {
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
	if len(req.DateOfBirth) > 20 {
		s.abort(c, invites.ErrInvalid)
		return
	}
	r := s.inviteAttempt(c, req.Invite)
	if dob, ok := patients.ParseDOB(req.DateOfBirth, s.p.Now()); ok {
		r.DateOfBirth = dob.Format("2006-01-02")
	}
	a, err := s.inviteService().Redeem(c.Request.Context(), r)
	if err != nil {
		s.abort(c, err)
		return
	}
	if a.Session != "" {
		http.SetCookie(c.Writer, session.Cookie(SessionCookie, a.Session, s.p.Auth.Absolute))
	}
	c.JSON(http.StatusOK, gin.H{"visit_id": a.Visit, "participant_id": a.Participant})
}

// inviteAttempt is the request's part of a redemption or a check: the
// secret, the patient session the browser holds, and where it comes from.
func (s *Server) inviteAttempt(c *gin.Context, secret string) invites.Redemption {
	r := invites.Redemption{Secret: secret, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
	if p := principal(c); p.Kind == access.Patient {
		r.Current = invites.Patient{Visit: p.VisitID, Participant: p.ParticipantID}
	}
	return r
}

// inviteService is the invites domain on this server's database.
func (s *Server) inviteService() *invites.Service {
	return invites.New(invites.Params{Env: s.env(), Record: s.record})
}
