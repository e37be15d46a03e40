package signaling

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
)

// CeremonyCookie holds the token of a passkey ceremony in progress (its
// state is server-side, signin): short-lived, HttpOnly, same-site.
const CeremonyCookie = "__Host-ov_webauthn"

// passkeyParams derives the WebAuthn relying party from public_url: its
// host is the RP ID (a passkey is bound to it; changing the host leaves
// the passkeys made for the old one unusable) and its origin the one
// browsers must report.
func passkeyParams(publicURL, origin, clinic string) signin.PasskeyParams {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return signin.PasskeyParams{}
	}
	return signin.PasskeyParams{RPID: u.Hostname(), Origins: []string{origin}, DisplayName: clinic}
}

type passkeyBeginRequest struct {
	Purpose string `json:"purpose"` // "signin" or "second_factor"
}

type passkeyLoginRequest struct {
	Credential jsontext.Value `json:"credential"`
}

type passkeyAddRequest struct {
	Name       string         `json:"name"`
	Credential jsontext.Value `json:"credential"`
}

type passkeyRenameRequest struct {
	Name string `json:"name"`
}

// PasskeyView is a passkey as its owner's security page shows it.
type PasskeyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	Synced     bool       `json:"synced"` // backed up to the user's account (a synced passkey)
}

func viewPasskey(p store.Passkey) PasskeyView {
	return PasskeyView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt, Synced: p.BackupState}
}

// rateLimited applies the per-address sign-in limit; false when it refused.
func (s *Server) rateLimited(c *gin.Context) bool {
	if ok, retry := s.ipLimiter.Allow(throttle.IPKey(httpx.ClientAddr(c))); !ok {
		s.auditLog(c, audit.Event{Action: actionLogin, Outcome: audit.Denied, Reason: "rate limited (address)"})
		c.Header("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		s.abort(c, httpx.E(httpx.KindRateLimited, "rate_limited", "Too many sign-in attempts from this network; wait a moment and try again."))
		return false
	}
	return true
}

func (s *Server) setCeremony(c *gin.Context, cer signin.Ceremony) {
	http.SetCookie(c.Writer, session.Cookie(CeremonyCookie, cer.Token, signin.CeremonyTTL))
	c.Data(http.StatusOK, "application/json; charset=utf-8", cer.Options)
}

// ceremonyToken is the ceremony cookie's token (cleared: a ceremony is
// used once).
func ceremonyToken(c *gin.Context) string {
	tok, _ := c.Cookie(CeremonyCookie)
	http.SetCookie(c.Writer, session.ClearCookie(CeremonyCookie))
	return tok
}

// passkeyBegin answers the options of a sign-in ceremony (the passkey
// alone, or as the second factor after the password).
func (s *Server) passkeyBegin(c *gin.Context) {
	if !s.rateLimited(c) {
		return
	}
	var req passkeyBeginRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	cer, err := s.signin.BeginAssertion(c.Request.Context(), req.Purpose)
	if err != nil {
		s.abort(c, err)
		return
	}
	s.setCeremony(c, cer)
}

// passkeyLogin signs in with a passkey alone.
func (s *Server) passkeyLogin(c *gin.Context) {
	if !s.rateLimited(c) {
		return
	}
	var req passkeyLoginRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	in, err := s.signin.PasskeyLogin(c.Request.Context(), signin.PasskeyAttempt{Ceremony: ceremonyToken(c),
		Assertion: req.Credential, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)})
	if err != nil {
		s.abort(c, err)
		return
	}
	s.signedIn(c, in)
}

// signedIn sets the new session's cookie and answers its view.
func (s *Server) signedIn(c *gin.Context, in signin.Opened) {
	http.SetCookie(c.Writer, session.Cookie(SessionCookie, in.Token, s.p.Auth.Absolute))
	now := s.p.Now()
	view, err := s.viewFor(access.Principal{Kind: access.Kind(in.User.Role), UserID: in.User.ID, SessionHash: in.Hash}, in.User, now, now)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

// listPasskeys answers the signed-in user's passkeys.
func (s *Server) listPasskeys(c *gin.Context) {
	keys, err := s.signin.Passkeys(c.Request.Context(), principal(c).UserID)
	if err != nil {
		s.abort(c, err)
		return
	}
	out := make([]PasskeyView, len(keys))
	for i, k := range keys {
		out[i] = viewPasskey(k)
	}
	c.JSON(http.StatusOK, gin.H{"passkeys": out})
}

// beginAddPasskey answers the options to create a passkey for the
// signed-in user; the ceremony is bound to this session.
func (s *Server) beginAddPasskey(c *gin.Context) {
	p := principal(c)
	cer, err := s.signin.BeginRegistration(c.Request.Context(), p.UserID, p.SessionHash)
	if err != nil {
		s.abort(c, err)
		return
	}
	s.setCeremony(c, cer)
}

// addPasskey verifies the new passkey and stores it under its name.
func (s *Server) addPasskey(c *gin.Context) {
	var req passkeyAddRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	p := principal(c)
	pk, err := s.signin.FinishRegistration(c.Request.Context(), signin.Registration{User: p.UserID, SessionHash: p.SessionHash,
		Ceremony: ceremonyToken(c), Name: req.Name, Credential: req.Credential, Event: s.selfEvent(c)})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, viewPasskey(pk))
}

func (s *Server) renamePasskey(c *gin.Context) {
	var req passkeyRenameRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if err := s.signin.RenamePasskey(c.Request.Context(), principal(c).UserID, c.Param("passkey_id"), req.Name, s.selfEvent(c)); err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "renamed"})
}

func (s *Server) removePasskey(c *gin.Context) {
	if err := s.signin.RemovePasskey(c.Request.Context(), principal(c).UserID, c.Param("passkey_id"), s.selfEvent(c)); err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "removed"})
}

// selfEvent is the audit entry's actor and source for a change a user
// makes to their own account.
func (s *Server) selfEvent(c *gin.Context) audit.Event {
	p := principal(c)
	return audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}
