package signaling

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/accounts"
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
	// LastSigninAt is when the user last signed in; absent: never.
	LastSigninAt *time.Time `json:"last_signin_at,omitempty"`
}

func viewUser(u store.User) UserView {
	return UserView{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, MFAEnrolled: u.MFAEnrolledAt != nil,
		PasswordSet: u.PasswordHash != "", Locked: u.LockedAt != nil, Disabled: u.DisabledAt != nil,
		FailedLogins: u.FailedLogins, CreatedAt: u.CreatedAt, LastSigninAt: u.LastSigninAt}
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
	users, err := s.accountService().List(c.Request.Context())
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

// dormantUsers lists the accounts that can sign in but have not for
// auth.dormant_days (or ?days=N, 1 to 3650), the longest dormant first.
func (s *Server) dormantUsers(c *gin.Context) {
	days := s.p.Auth.DormantDays
	if q := c.Query("days"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 3650 {
			s.abort(c, httpx.E(httpx.KindInvalid, "bad_parameter", "days is a whole number from 1 to 3650."))
			return
		}
		days = n
	}
	if days <= 0 {
		days = 90
	}
	users, err := s.accountService().Dormant(c.Request.Context(), days)
	if err != nil {
		s.abort(c, err)
		return
	}
	out := make([]UserView, len(users))
	for i, u := range users {
		out[i] = viewUser(u)
	}
	s.auditLog(c, s.adminEvent(c, actionUserList, ""))
	c.JSON(http.StatusOK, gin.H{"days": days, "users": out})
}

func (s *Server) adminEvent(c *gin.Context, action, target string) audit.Event {
	p := principal(c)
	return audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: action, ResourceType: "user",
		ResourceID: target, Outcome: audit.Success, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

// accountService is the staff accounts domain on this server's database.
func (s *Server) accountService() *accounts.Service {
	return accounts.New(s.env())
}

type inviteRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// inviteUser creates a provider or admin and returns their one-time setup
// link (to set a password and enrol TOTP).
func (s *Server) inviteUser(c *gin.Context) {
	var req inviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	expires := s.p.Now().Add(s.p.Auth.SetupLinkTTL)
	u, link, err := InviteUser(c.Request.Context(), s.p.DB, s.adminEvent(c, actionUserCreate, ""), req.Email, req.Name, req.Role, expires, s.p.PublicURL)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"user": u, "setup_link": link, "setup_link_expires_at": expires})
}

// InviteUser creates a staff user with a one-time setup link
// (accounts.Service.Invite), auditing the creation with ev (its actor fields)
// in the same transaction. The admin API and the `openvisit user create`
// command both use it.
func InviteUser(ctx context.Context, db *store.DB, ev audit.Event, email, name, role string, expires time.Time, publicURL string) (UserView, string, error) {
	u, secret, err := accounts.New(store.Env{DB: db}).Invite(ctx, accounts.Invitation{Email: email, Name: name, Role: role, Expires: expires, Event: ev})
	if err != nil {
		return UserView{}, "", err
	}
	return viewUser(u), SetupURL(publicURL, secret), nil
}

type roleRequest struct {
	Role string `json:"role"`
}

// accountChange is the request's admin acting on :user_id.
func (s *Server) accountChange(c *gin.Context) accounts.Change {
	return accounts.Change{Admin: principal(c).UserID, Target: ids.UserID(c.Param("user_id")), Event: s.adminEvent(c, "", "")}
}

// changeRole gives a user another role; their sessions end, and with them
// their calls on every media node (internal/revocation): no call goes on
// under the old role.
func (s *Server) changeRole(c *gin.Context) {
	var req roleRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	s.answerAccount(c, s.accountService().SetRole(c.Request.Context(), s.accountChange(c), req.Role), "ok")
}

// disableUser ends every session of the user at once; the media nodes end
// their calls through the revocation path (internal/revocation).
func (s *Server) disableUser(c *gin.Context) {
	s.answerAccount(c, s.accountService().Disable(c.Request.Context(), s.accountChange(c)), "disabled")
}

func (s *Server) enableUser(c *gin.Context) {
	s.answerAccount(c, s.accountService().Enable(c.Request.Context(), s.accountChange(c)), "enabled")
}

func (s *Server) unlockUser(c *gin.Context) {
	s.answerAccount(c, s.accountService().Unlock(c.Request.Context(), s.accountChange(c)), "unlocked")
}

// answerAccount answers an account change: its error, or its new status.
func (s *Server) answerAccount(c *gin.Context, err error, status string) {
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": status})
}

// resetMFA removes the user's authenticator and recovery codes and issues a
// link to enrol again; their sessions end. Not for oneself (review.ResetMFA).
func (s *Server) resetMFA(c *gin.Context) {
	id := ids.UserID(c.Param("user_id"))
	if !ids.Valid(string(id)) {
		s.abort(c, errNotFound)
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
