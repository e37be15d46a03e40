package signaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/store"
)

// UserView is a user as the admin pages see it: no secrets.
type UserView struct {
	ID           ids.UserID `json:"id"`
	Email        string     `json:"email"`
	Name         string     `json:"name"`
	Role         string     `json:"role"`
	MFAEnrolled  bool       `json:"mfa_enrolled"`
	PasswordSet  bool       `json:"password_set"`
	Locked       bool       `json:"locked"`
	Disabled     bool       `json:"disabled"`
	FailedLogins int        `json:"failed_logins"`
	CreatedAt    time.Time  `json:"created_at"`
}

func viewUser(u store.User) UserView {
	return UserView{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, MFAEnrolled: u.MFAEnrolledAt != nil,
		PasswordSet: u.PasswordHash != "", Locked: u.LockedAt != nil, Disabled: u.DisabledAt != nil,
		FailedLogins: u.FailedLogins, CreatedAt: u.CreatedAt}
}

// SetupURL is the one-time link for a setup secret; the secret rides in the
// fragment so it never reaches a server log.
func SetupURL(publicURL, secret string) string {
	u, err := url.Parse(publicURL)
	if err != nil {
		return ""
	}
	u.Path, u.Fragment = "/setup", "token="+secret
	return u.String()
}

func (s *Server) listUsers(c *gin.Context) {
	users, err := store.ListUsers(c.Request.Context(), s.p.DB)
	if err != nil {
		s.abort(c, err)
		return
	}
	out := make([]UserView, len(users))
	for i, u := range users {
		out[i] = viewUser(u)
	}
	s.auditLog(c, s.adminEvent(c, actionUserList, ""))
	c.JSON(http.StatusOK, gin.H{"users": out})
}

func (s *Server) adminEvent(c *gin.Context, action, target string) audit.Event {
	p := principal(c)
	return audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: action, ResourceType: "user",
		ResourceID: target, Outcome: audit.Success, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

type inviteRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

func validEmail(e string) bool {
	e = strings.TrimSpace(e)
	at := strings.LastIndexByte(e, '@')
	return len(e) >= 3 && len(e) <= maxEmailLen && at > 0 && at < len(e)-1 && !strings.ContainsAny(e, " \t\r\n<>\"")
}

// inviteUser creates a provider or admin and returns their one-time setup
// link (to set a password and enrol TOTP).
func (s *Server) inviteUser(c *gin.Context) {
	ctx := c.Request.Context()
	var req inviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	switch {
	case !validEmail(req.Email):
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_email", "Enter a valid email address."))
		return
	case len(req.Name) > maxNameLen:
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_name", "The name is too long."))
		return
	case !store.ValidRole(req.Role):
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_role", "Role must be provider or admin."))
		return
	}
	ev := s.adminEvent(c, actionUserCreate, "")
	u, link, err := InviteUser(ctx, s.p.DB, ev, req.Email, req.Name, req.Role, s.p.Now().Add(s.p.Auth.SetupLinkTTL), s.p.PublicURL)
	if errors.Is(err, store.ErrConflict) {
		s.abort(c, httpx.E(httpx.KindConflict, "email_taken", "A user with that email already exists."))
		return
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"user": u, "setup_link": link, "setup_link_expires_at": s.p.Now().Add(s.p.Auth.SetupLinkTTL)})
}

// InviteUser creates a staff user with a one-time setup link, auditing the
// creation with ev (its actor fields) in the same transaction. The admin API
// and the `openvisit user create` command both use it.
func InviteUser(ctx context.Context, st *store.DB, ev audit.Event, email, name, role string, expires time.Time, publicURL string) (UserView, string, error) {
	if !validEmail(email) || len(name) > maxNameLen || !store.ValidRole(role) {
		return UserView{}, "", fmt.Errorf("signaling: invite: invalid email, name or role")
	}
	var u store.User
	var secret string
	err := st.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		if u, err = store.CreateUser(ctx, tx, email, name, role); err != nil {
			return err
		}
		if secret, err = store.CreateSetupLink(ctx, tx, u.ID, store.PurposeInvite, expires); err != nil {
			return err
		}
		ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome, ev.Reason = actionUserCreate, "user", string(u.ID), audit.Success, "role "+u.Role
		return audit.AppendTx(ctx, tx, ev)
	})
	if err != nil {
		return UserView{}, "", err
	}
	return viewUser(u), SetupURL(publicURL, secret), nil
}

type roleRequest struct {
	Role string `json:"role"`
}

// targetUser reads :user_id, refusing an admin's action on themselves where
// it could lock every admin out.
func (s *Server) targetUser(c *gin.Context, notSelf bool) (ids.UserID, bool) {
	id := ids.UserID(c.Param("user_id"))
	if !ids.Valid(string(id)) {
		s.abort(c, errNotFound)
		return "", false
	}
	if notSelf && id == principal(c).UserID {
		s.abort(c, httpx.E(httpx.KindConflict, "self", "You cannot do this to your own account; ask another admin."))
		return "", false
	}
	return id, true
}

// userChange runs change and its audit entry in one transaction.
func (s *Server) userChange(c *gin.Context, id ids.UserID, action, reason string, change func(pgx.Tx) error) bool {
	ctx := c.Request.Context()
	err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := store.UserByID(ctx, tx, id, true); err != nil {
			return err
		}
		if err := change(tx); err != nil {
			return err
		}
		ev := s.adminEvent(c, action, string(id))
		ev.Reason = reason
		return audit.AppendTx(ctx, tx, ev)
	})
	if err != nil {
		s.abort(c, err)
		return false
	}
	return true
}

func (s *Server) changeRole(c *gin.Context) {
	var req roleRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if !store.ValidRole(req.Role) {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_role", "Role must be provider or admin."))
		return
	}
	id, ok := s.targetUser(c, true)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if s.userChange(c, id, actionUserRole, "to "+req.Role, func(tx pgx.Tx) error {
		if err := store.SetRole(ctx, tx, id, req.Role); err != nil {
			return err
		}
		// A new role takes effect at the next sign-in, never mid-session.
		_, err := store.RevokeUserSessions(ctx, tx, id, s.p.Now(), "role change")
		return err
	}) {
		// Revoking the sessions also ends the user's calls on every media
		// node (internal/revocation): no call goes on under the old role.
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	}
}

// disableUser ends every session of the user at once; the media nodes end
// their calls through the revocation path (internal/revocation).
func (s *Server) disableUser(c *gin.Context) {
	id, ok := s.targetUser(c, true)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	now := s.p.Now()
	if !s.userChange(c, id, actionUserDisable, "", func(tx pgx.Tx) error {
		if err := store.SetDisabled(ctx, tx, id, &now); err != nil {
			return err
		}
		_, err := store.RevokeUserSessions(ctx, tx, id, now, "disabled")
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "disabled"})
}

func (s *Server) enableUser(c *gin.Context) {
	id, ok := s.targetUser(c, false)
	if !ok {
		return
	}
	if s.userChange(c, id, actionUserEnable, "", func(tx pgx.Tx) error {
		return store.SetDisabled(c.Request.Context(), tx, id, nil)
	}) {
		c.JSON(http.StatusOK, gin.H{"status": "enabled"})
	}
}

func (s *Server) unlockUser(c *gin.Context) {
	id, ok := s.targetUser(c, false)
	if !ok {
		return
	}
	if s.userChange(c, id, actionUserUnlock, "", func(tx pgx.Tx) error {
		return store.Unlock(c.Request.Context(), tx, id)
	}) {
		c.JSON(http.StatusOK, gin.H{"status": "unlocked"})
	}
}

// resetMFA removes the user's authenticator and recovery codes and issues a
// link to enrol again; their sessions end. Not for oneself (review.ResetMFA).
func (s *Server) resetMFA(c *gin.Context) {
	id, ok := s.targetUser(c, false)
	if !ok {
		return
	}
	now := s.p.Now()
	// review.ResetMFA revokes the user's sessions, which ends their calls
	// on every media node (internal/revocation).
	secret, err := review.ResetMFA(c.Request.Context(), s.p.DB, s.reviewer(c), id, now, now.Add(s.p.Auth.SetupLinkTTL))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "mfa_reset", "setup_link": SetupURL(s.p.PublicURL, secret),
		"setup_link_expires_at": now.Add(s.p.Auth.SetupLinkTTL)})
}

// reviewer is the signed-in admin as the one who signs off.
func (s *Server) reviewer(c *gin.Context) review.Reviewer {
	return review.Reviewer{UserID: principal(c).UserID, Event: s.adminEvent(c, "", "")}
}

func (s *Server) listAlerts(c *gin.Context) {
	alerts, err := store.ListAlerts(c.Request.Context(), s.p.DB, 500)
	if err != nil {
		s.abort(c, err)
		return
	}
	s.auditLog(c, s.adminEvent(c, actionAlertList, ""))
	c.JSON(http.StatusOK, gin.H{"alerts": alerts})
}

// ackAlert acknowledges an alert; not one about oneself (review.AckAlert).
func (s *Server) ackAlert(c *gin.Context) {
	if err := review.AckAlert(c.Request.Context(), s.p.DB, s.reviewer(c), c.Param("alert_id"), s.p.Now()); err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "acknowledged"})
}

func (s *Server) listBreakGlass(c *gin.Context) {
	grants, err := s.breakGlassService().List(c.Request.Context())
	if err != nil {
		s.abort(c, err)
		return
	}
	s.auditLog(c, s.adminEvent(c, actionBreakGlassList, ""))
	c.JSON(http.StatusOK, gin.H{"grants": grants})
}

// reviewBreakGlass marks a grant reviewed; not one's own
// (breakglass.Service.Review).
func (s *Server) reviewBreakGlass(c *gin.Context) {
	if err := s.breakGlassService().Review(c.Request.Context(), s.reviewer(c), c.Param("grant_id")); err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "reviewed"})
}
