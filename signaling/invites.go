package signaling

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/i18n"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/web"
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
	// Lang is the catalogue the invite speaks (email, calendar file, the
	// patient's pages): a code of web/static/i18n; empty is English.
	Lang string `json:"lang"`
}

// createInvite issues a new one-time link for the visit (revoking earlier
// ones) with a calendar file, and emails it when asked and configured.
// inviteLanguage checks the language an invite is to speak (English when
// empty, which it fills in) against the message catalogues.
func (s *Server) inviteLanguage(lang *string) (*i18n.Catalogue, error) {
	cat, err := web.Catalogue()
	if err != nil {
		return nil, err
	}
	if *lang == "" {
		*lang = i18n.Default
	}
	if !cat.Has(*lang) {
		return nil, httpx.E(httpx.KindInvalid, "bad_language", "Choose one of the offered languages.")
	}
	return cat, nil
}

func (s *Server) createInvite(c *gin.Context) {
	ctx := c.Request.Context()
	var req createInviteRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.DecodeJSON(c, &req); err != nil {
			s.abort(c, err)
			return
		}
	}
	cat, err := s.inviteLanguage(&req.Lang)
	if err != nil {
		s.abort(c, err)
		return
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
		inv, secret, err = store.CreateLangInvite(ctx, tx, v.ID, s.p.Now(), req.Lang)
		return err
	})
	if !ok {
		return
	}
	link := InviteURL(s.p.PublicURL, secret)
	from, until := invites.Window(v)
	in := invitation{visit: v, link: link, cat: cat, lang: req.Lang, zone: s.p.Zone}
	ics := in.ics(s.p.Now())
	if req.Email && !s.emailInvite(c, in, ics) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{
		"invite_id": inv.ID, "invite_url": link, "usable_from": from, "usable_until": until,
		"ics": ics, "emailed": req.Email, "lang": req.Lang,
	})
}

// emailInvite sends the patient the link and the calendar file; false when
// it answered an error.
func (s *Server) emailInvite(c *gin.Context, in invitation, ics string) bool {
	ctx := c.Request.Context()
	v := in.visit
	p, err := store.PatientByID(ctx, s.p.DB, v.PatientID)
	if err != nil || p.Email == "" {
		s.abort(c, httpx.E(httpx.KindInvalid, "no_patient_email", "The patient has no email address on record."))
		return false
	}
	if err := s.p.Mailer.Send(ctx, in.message(p.Email, ics, principal(c).UserID)); err != nil {
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "smtp_failed", "The email could not be sent; send the link yourself.", err))
		return false
	}
	ev := s.visitEvent(c, actionInviteEmail, v.ID)
	ev.PatientID = v.PatientID
	s.auditLog(c, ev)
	return true
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
