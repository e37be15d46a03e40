package signaling

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/sso"
	"github.com/openvisit/openvisit/internal/store"
)

// Cookies of a sign-in through an identity provider. SameSite=Lax, not
// Strict: the issuer sends the browser back with a cross-site navigation,
// which must carry the flow's cookie. Both are sealed and short-lived.
const (
	ssoFlowCookie    = "__Host-ov_oidc_flow"
	ssoPendingCookie = "__Host-ov_oidc_pending"
)

// ssoRefusals are the codes the sign-in page is sent back with
// (/signin?sso=<code>), by the sso domain's errors.
var ssoRefusals = []struct {
	err  error
	code string
}{
	{sso.ErrFlow, "expired"},
	{sso.ErrNotMapped, "not_allowed"},
	{sso.ErrEmailTaken, "not_linked"},
	{sso.ErrUnavailable, "unavailable"},
	{sso.ErrRefused, "refused"},
	{signin.ErrNoSecondFactor, "no_second_factor"},
	{signin.ErrBadCredentials, "refused"},
}

type ssoSecondFactorRequest struct {
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

// ssoIssuers lists the identity providers' sign-in buttons, and whether
// local passwords are on for everyone.
func (s *Server) ssoIssuers(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"issuers": s.sso.Buttons(), "local_passwords": s.p.OIDC.LocalPasswords})
}

// ssoStart sends the browser to the issuer with a fresh flow.
func (s *Server) ssoStart(c *gin.Context) {
	authURL, cookie, err := s.sso.Begin(c.Request.Context(), c.Param("issuer_id"))
	switch {
	case errors.Is(err, sso.ErrUnknownIssuer):
		s.abort(c, errNotFound)
		return
	case err != nil:
		s.log.Warn("sso start", "issuer", c.Param("issuer_id"), "err", err)
		c.Redirect(http.StatusSeeOther, "/signin?sso=unavailable")
		return
	}
	http.SetCookie(c.Writer, ssoCookie(ssoFlowCookie, cookie, int(sso.FlowTTL.Seconds())))
	c.Redirect(http.StatusSeeOther, authURL)
}

// ssoCallback finishes the flow: a session and the user's home page, the
// sign-in page asking for the local second factor, or the sign-in page
// saying why not.
func (s *Server) ssoCallback(c *gin.Context) {
	flow, _ := c.Cookie(ssoFlowCookie)
	http.SetCookie(c.Writer, ssoCookie(ssoFlowCookie, "", -1))
	res, err := s.sso.Finish(c.Request.Context(), flow, c.Request.URL.Query(), source(c))
	if err != nil {
		code := "failed"
		for _, r := range ssoRefusals {
			if errors.Is(err, r.err) {
				code = r.code
				break
			}
		}
		if code == "failed" {
			s.log.Error("sso callback", "err", err)
		}
		c.Redirect(http.StatusSeeOther, "/signin?sso="+code)
		return
	}
	if res.Pending != "" {
		http.SetCookie(c.Writer, ssoCookie(ssoPendingCookie, res.Pending, int(sso.PendingTTL.Seconds())))
		c.Redirect(http.StatusSeeOther, "/signin?sso=second_factor")
		return
	}
	http.SetCookie(c.Writer, session.Cookie(SessionCookie, res.Opened.Token, s.p.Auth.Absolute))
	c.Redirect(http.StatusSeeOther, homeFor(res.Opened.User.Role))
}

// ssoSecondFactor completes a pending sign-in with the local TOTP or a
// recovery code, answering like POST /auth/login.
func (s *Server) ssoSecondFactor(c *gin.Context) {
	if ok, retry := s.ipLimiter.Allow(throttle.IPKey(httpx.ClientAddr(c))); !ok {
		s.auditLog(c, audit.Event{Action: actionLogin, Outcome: audit.Denied, Reason: "rate limited (address)"})
		c.Header("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		s.abort(c, httpx.E(httpx.KindRateLimited, "rate_limited", "Too many sign-in attempts from this network; wait a moment and try again."))
		return
	}
	var req ssoSecondFactorRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	pending, _ := c.Cookie(ssoPendingCookie)
	in, err := s.sso.CompleteSecondFactor(c.Request.Context(), pending, req.Code, req.RecoveryCode, source(c))
	if errors.Is(err, sso.ErrFlow) {
		err = httpx.E(httpx.KindUnauthenticated, "sso_expired", "This sign-in has expired. Sign in with your clinic account again.")
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	http.SetCookie(c.Writer, ssoCookie(ssoPendingCookie, "", -1))
	http.SetCookie(c.Writer, session.Cookie(SessionCookie, in.Token, s.p.Auth.Absolute))
	now := s.p.Now()
	view, err := s.viewFor(access.Principal{Kind: access.Kind(in.User.Role), UserID: in.User.ID, SessionHash: in.Hash}, in.User, now, now)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

func ssoCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode}
}

// homeFor is a staff member's first page.
func homeFor(role string) string {
	if role == store.RoleAdmin {
		return "/admin"
	}
	return "/provider"
}
