package signaling

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/auth/csrf"
	"github.com/openvisit/openvisit/internal/auth/password"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
)

// errBadCredentials is the one answer to every failed sign-in
// (signin.ErrBadCredentials): unknown account, wrong password, wrong or
// replayed code, disabled or locked.
var errBadCredentials = httpx.E(httpx.KindUnauthenticated, "invalid_credentials",
	"Sign-in failed. Check your email, password and authenticator code. After repeated failures the account is locked until an admin unlocks it.")

type loginRequest struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
	// Passkey is the second factor as a passkey's answer to the ceremony
	// begun at auth/passkey/begin (purpose second_factor).
	Passkey jsontext.Value `json:"passkey"`
}

// SessionView is what a page learns about its session.
type SessionView struct {
	Kind       access.Kind       `json:"kind"`
	UserID     ids.UserID        `json:"user_id,omitempty"`
	Email      string            `json:"email,omitempty"`
	Name       string            `json:"name,omitempty"`
	VisitID    ids.VisitID       `json:"visit_id,omitempty"`
	CSRFToken  string            `json:"csrf_token"`
	IdleEndsAt time.Time         `json:"idle_ends_at"`
	EndsAt     time.Time         `json:"ends_at"`
	IdleSecs   int               `json:"idle_seconds"`
	Now        time.Time         `json:"now"`
	DevOutbox  bool              `json:"dev_outbox,omitempty"` // staff pages link the development mail outbox
	Lang       string            `json:"lang,omitempty"`       // a patient's invite's language (a catalogue code)
	Extra      map[string]string `json:"-"`
}

func (s *Server) login(c *gin.Context) {
	if !s.rateLimited(c) {
		return
	}
	var req loginRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	a := signin.Attempt{Email: req.Email, Password: req.Password, Code: req.Code, RecoveryCode: req.RecoveryCode,
		Passkey: req.Passkey, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
	if len(req.Passkey) > 0 {
		a.Ceremony = ceremonyToken(c)
	}
	in, err := s.signin.Login(c.Request.Context(), a)
	var th *signin.ThrottledError
	if errors.As(err, &th) && th.Retry != throttle.Forever {
		c.Header("Retry-After", strconv.Itoa(int(th.Retry.Seconds())+1))
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	s.signedIn(c, in)
}

func (s *Server) viewFor(p access.Principal, u store.User, created, lastSeen time.Time) (SessionView, error) {
	policy := s.staffPolicy()
	if p.Kind == access.Patient {
		policy = s.patientPolicy()
	}
	tok, err := csrfToken(s, p.SessionHash)
	if err != nil {
		return SessionView{}, err
	}
	now := s.p.Now()
	return SessionView{
		Kind: p.Kind, UserID: u.ID, Email: u.Email, Name: u.Name, VisitID: p.VisitID, CSRFToken: tok,
		IdleEndsAt: policy.ExpiresAt(created, lastSeen), EndsAt: created.Add(policy.Absolute),
		IdleSecs: int(policy.Idle.Seconds()), Now: now, DevOutbox: s.p.Outbox != nil && p.IsStaff(),
	}, nil
}

// sessionInfo answers GET /auth/session (passive: does not extend the
// session) and POST /auth/keepalive (the user is active: it does).
func (s *Server) sessionInfo(c *gin.Context) {
	p := principal(c)
	sess := c.MustGet(sessionKey).(store.Session)
	lastSeen := sess.LastSeenAt
	if c.Request.Method == http.MethodPost {
		lastSeen = s.p.Now()
	}
	var u store.User
	if p.IsStaff() {
		var err error
		if u, err = s.signin.User(c.Request.Context(), p.UserID); err != nil {
			s.abort(c, err)
			return
		}
	}
	view, err := s.viewFor(p, u, sess.CreatedAt, lastSeen)
	if err == nil && p.Kind == access.Patient {
		// The language the provider chose for the patient's invite, so a
		// page opened without the tab's choice speaks it too.
		view.Lang, err = store.InviteLangOf(c.Request.Context(), s.p.DB, p.ParticipantID)
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

func (s *Server) logout(c *gin.Context) {
	p := principal(c)
	if err := s.signin.Logout(c.Request.Context(), p, source(c)); err != nil {
		s.abort(c, err)
		return
	}
	http.SetCookie(c.Writer, session.ClearCookie(SessionCookie))
	c.JSON(http.StatusOK, gin.H{"status": "signed_out"})
}

func (s *Server) logoutAll(c *gin.Context) {
	p := principal(c)
	n, err := s.signin.LogoutAll(c.Request.Context(), p, source(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	http.SetCookie(c.Writer, session.ClearCookie(SessionCookie))
	c.JSON(http.StatusOK, gin.H{"status": "signed_out", "sessions": n})
}

type setupRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
	Code     string `json:"code"`
}

var errSetupLink = httpx.E(httpx.KindNotFound, "link_invalid", "This setup link is not valid, has expired, or was already used. Ask your admin for a new one.")

// setupBegin checks a setup link and starts TOTP enrolment (signin).
func (s *Server) setupBegin(c *gin.Context) {
	var req setupRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	e, err := s.signin.BeginSetup(c.Request.Context(), req.Token, source(c))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"expires_at": e.Link.ExpiresAt,
		"email":      e.User.Email, "purpose": e.Link.Purpose, "needs_password": e.NeedsPassword,
		"otpauth_uri": e.URI, "secret": e.Secret, "qr_png": "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR),
	})
}

// setupComplete sets the password (for invites) and confirms TOTP with a
// first code, returning single-use recovery codes. Any failure changes
// nothing and leaves the link usable.
func (s *Server) setupComplete(c *gin.Context) {
	var req setupRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	u, codes, err := s.signin.CompleteSetup(c.Request.Context(), signin.Completion{
		Secret: req.Token, Password: req.Password, Code: req.Code, Source: source(c)})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"email": u.Email, "recovery_codes": codes})
}

// source is where the request came from, for the sign-in domain's audit
// entries.
func source(c *gin.Context) signin.Source {
	return signin.Source{IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

func passwordMessage(err error) string {
	switch {
	case errors.Is(err, password.ErrTooShort):
		return "Use at least 12 characters; a few unrelated words make a strong password."
	case errors.Is(err, password.ErrTooLong):
		return "Use at most 128 characters."
	default:
		return "That password is too common or too easy to guess; choose another."
	}
}

func csrfToken(s *Server, sessionHash []byte) (string, error) {
	return csrf.Token(s.p.Sealer.MACKey(), sessionHash)
}

// CSRFToken returns the CSRF token of the session with the given hash (for
// tests that build requests without a page).
func (s *Server) CSRFToken(sessionHash []byte) string {
	t, _ := csrfToken(s, sessionHash)
	return t
}
