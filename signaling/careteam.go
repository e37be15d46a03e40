package signaling

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/store"
)

// The care team (issue 17): the visit's providers invite a caregiver, an
// interpreter (or the patient) each with their own one-time link, revoke
// each on its own, and add another staff provider as a guest provider.
// The invitee's name and email are PHI (sealed in the store, never
// logged); the roster names everyone in the call for the call page's
// tiles.

// Limits of an invitee's details.
const (
	maxInviteeName  = 200
	maxInviteeEmail = 254
)

type createInviteeRequest struct {
	Role      string `json:"role"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	SendEmail bool   `json:"send_email"`
	// Lang is the catalogue the invitee's email and pages speak (en, es);
	// empty: English.
	Lang string `json:"lang"`
}

var (
	errBadRole      = httpx.E(httpx.KindInvalid, "bad_role", "role must be patient, caregiver or interpreter.")
	errBadInvitee   = httpx.E(httpx.KindInvalid, "bad_invitee", "The name (at most 200 characters) or email address (at most 254) is not valid.")
	errNoInviteeTo  = httpx.E(httpx.KindInvalid, "no_invitee_email", "Give the invitee's email address to email the link.")
	errNoGuest      = httpx.E(httpx.KindNotFound, "no_such_provider", "No active provider has that email address.")
	errGuestIsOwner = httpx.E(httpx.KindConflict, "already_provider", "That provider is already in this visit.")
)

func (r createInviteeRequest) check() error {
	if !store.ValidInviteeRole(r.Role) {
		return errBadRole
	}
	if !utf8.ValidString(r.Name) || utf8.RuneCountInString(r.Name) > maxInviteeName || len(r.Email) > maxInviteeEmail ||
		(r.Email != "" && !strings.Contains(r.Email, "@")) || strings.ContainsAny(r.Name+r.Email, "\r\n") {
		return errBadInvitee
	}
	if r.SendEmail && r.Email == "" {
		return errNoInviteeTo
	}
	return nil
}

// InviteeURL is an invitee's one-time link. An interpreter's says so in
// the fragment, so the page does not ask for a date of birth (the server
// does not ask one of them either way); nothing else about the visit is
// in it.
func InviteeURL(publicURL, secret, role string) string {
	u := InviteURL(publicURL, secret)
	if u != "" && !invites.NeedsDOB(role) {
		u += "&role=" + role
	}
	return u
}

// createInvitee issues one invitee's own link; a patient's revokes the
// patient's earlier links, others stand beside the rest.
func (s *Server) createInvitee(c *gin.Context) {
	var req createInviteeRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if err := req.check(); err != nil {
		s.abort(c, err)
		return
	}
	cat, err := s.inviteLanguage(&req.Lang)
	if err != nil {
		s.abort(c, err)
		return
	}
	if req.SendEmail && s.p.Mailer == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "no_smtp", "Email is not configured on this server; send the link yourself."))
		return
	}
	ctx := c.Request.Context()
	var inv store.Invite
	var secret string
	v, ok := s.visitChange(c, actionInviteCreate, func(tx pgx.Tx, v store.ScheduledVisit) error {
		if store.Closed(v.Status) {
			return errVisitClosed
		}
		var err error
		inv, secret, err = store.CreateRoleInvite(ctx, tx, store.NewInvite{Visit: v.ID, Role: req.Role, Name: req.Name, Email: req.Email, Lang: req.Lang}, s.p.Now())
		return err
	})
	if !ok {
		return
	}
	link := InviteeURL(s.p.PublicURL, secret, req.Role)
	in := invitation{visit: v, link: link, cat: cat, lang: req.Lang, zone: s.p.Zone}
	ics := in.ics(s.p.Now())
	if req.SendEmail {
		if err := s.p.Mailer.Send(ctx, in.message(req.Email, ics, principal(c).UserID)); err != nil {
			s.abort(c, httpx.Wrap(httpx.KindUnavailable, "smtp_failed", "The email could not be sent; send the link yourself.", err))
			return
		}
		s.auditLog(c, s.visitEvent(c, actionInviteEmail, v.ID))
	}
	from, until := invites.Window(v)
	c.JSON(http.StatusCreated, gin.H{"invite_id": inv.ID, "role": inv.Role, "invite_url": link,
		"usable_from": from, "usable_until": until, "ics": ics, "emailed": req.SendEmail})
}

// listInvitees shows the visit's invites with their invitees' names and
// emails (PHI: the read is audited before it leaves).
func (s *Server) listInvitees(c *gin.Context) {
	ctx := c.Request.Context()
	id := ids.VisitID(c.Param("visit_id"))
	list, err := store.InviteesOf(ctx, s.p.DB, id)
	if err != nil {
		s.abort(c, err)
		return
	}
	if err := s.p.DB.Audit().Append(ctx, s.visitEvent(c, actionInviteesView, id)); err != nil {
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "audit_unavailable", "The audit log cannot be written; access is refused.", err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"invitees": list})
}

// revokeInvitee revokes one invite; whoever used it leaves the waiting
// room or the call (their media closes within seconds), the others stay.
func (s *Server) revokeInvitee(c *gin.Context) {
	ctx := c.Request.Context()
	invite := c.Param("invite_id")
	s.visitChangeOK(c, actionInviteRevoke, func(tx pgx.Tx, v store.ScheduledVisit) error {
		found, err := store.RevokeInvite(ctx, tx, v.ID, invite, s.p.Now())
		if err == nil && !found {
			return store.ErrNotFound
		}
		return err
	})
}

type addGuestRequest struct {
	Email string `json:"email"`
}

// addGuest makes another provider (by their staff email) a guest provider
// of the visit: they admit, record and end it like its own provider.
func (s *Server) addGuest(c *gin.Context) {
	var req addGuestRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if req.Email == "" || len(req.Email) > maxInviteeEmail {
		s.abort(c, errBadInvitee)
		return
	}
	ctx := c.Request.Context()
	var guest store.User
	s.visitChangeOK(c, actionGuestAdd, func(tx pgx.Tx, v store.ScheduledVisit) error {
		u, err := store.UserByEmail(ctx, tx, req.Email)
		if err != nil || u.Role != store.RoleProvider || u.DisabledAt != nil {
			return errNoGuest
		}
		if u.ID == v.ProviderID {
			return errGuestIsOwner
		}
		guest = u
		return store.AddVisitStaff(ctx, tx, v.ID, u.ID, principal(c).UserID, s.p.Now())
	}, func() gin.H { return gin.H{"user_id": guest.ID} })
}

// visitChangeOK is visitChange answering 200 with body's result ({}
// without one).
func (s *Server) visitChangeOK(c *gin.Context, action string, change func(tx pgx.Tx, v store.ScheduledVisit) error, body ...func() gin.H) {
	if _, ok := s.visitChange(c, action, change); !ok {
		return
	}
	out := gin.H{}
	for _, f := range body {
		out = f()
	}
	c.JSON(http.StatusOK, out)
}

// roster names everyone admitted to the visit, with their role, for the
// call page's tiles: providers by their staff name, invitees by the name
// their invite gave (none: their role). The patient's record is not read.
// Invitees' names are PHI: the read is audited before it leaves.
func (s *Server) roster(c *gin.Context) {
	ctx := c.Request.Context()
	id := ids.VisitID(c.Param("visit_id"))
	list, err := store.RosterOf(ctx, s.p.DB, id)
	if err != nil {
		s.abort(c, err)
		return
	}
	if err := s.p.DB.Audit().Append(ctx, s.visitEvent(c, actionRosterView, id)); err != nil {
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "audit_unavailable", "The audit log cannot be written; access is refused.", err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"participants": list})
}
