package signaling

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/csrf"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
)

// SessionCookie names the session cookie; the __Host- prefix makes the
// browser insist on Secure, Path=/ and no Domain.
const SessionCookie = "__Host-ov_session"

const principalKey = "openvisit.principal"

// passiveRoutes read the session without counting as activity, so that a
// page polling its own expiry does not keep itself signed in.
var passiveRoutes = map[string]bool{
	access.Key(http.MethodGet, "/api/v1/auth/session"):            true,
	access.Key(http.MethodGet, "/api/v1/visits/:visit_id/events"): true,
}

// principal returns the request's authenticated caller.
func principal(c *gin.Context) access.Principal {
	if p, ok := c.Get(principalKey); ok {
		return p.(access.Principal)
	}
	return access.Principal{Kind: access.Anonymous}
}

// authenticate resolves the session cookie into a Principal. Expired,
// revoked or unknown sessions make the caller anonymous; an expiry is
// recorded (revoked and audited) the first time it is seen.
func (s *Server) authenticate(c *gin.Context) {
	c.Set(principalKey, access.Principal{Kind: access.Anonymous})
	if c.FullPath() == "" {
		// Pages and unknown paths: nothing to authorize, no session lookup.
		c.Next()
		return
	}
	if isSCIM(c) {
		s.authenticateBearer(c) // scim.go: a bearer token, never a cookie
		return
	}
	if isMachine(c) {
		s.authenticateClient(c) // fhir.go: a client's access token, never a cookie
		return
	}
	raw, err := c.Cookie(SessionCookie)
	if err != nil || !session.WellFormed(raw) {
		c.Next()
		return
	}
	ctx := c.Request.Context()
	hash := session.HashToken(raw)
	sess, err := s.signin.Session(ctx, hash, source(c))
	switch {
	case errors.Is(err, signin.ErrNoSession):
		c.Next()
		return
	case errors.Is(err, signin.ErrSessionOver):
		http.SetCookie(c.Writer, session.ClearCookie(SessionCookie))
		c.Next()
		return
	case err != nil:
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "unavailable", "The service is unavailable; try again shortly.", err))
		return
	}
	p := access.Principal{SessionHash: hash}
	switch {
	case sess.Kind == store.SessionPatient:
		p.Kind, p.VisitID, p.ParticipantID, p.Role = access.Patient, sess.VisitID, sess.ParticipantID, sess.ParticipantRole
	case sess.UserRole == store.RoleAdmin:
		p.Kind, p.UserID = access.Admin, sess.UserID
	case sess.UserRole == store.RoleProvider:
		p.Kind, p.UserID = access.Provider, sess.UserID
	default:
		c.Next()
		return
	}
	if p.CSRFToken, err = csrf.Token(s.p.Sealer.MACKey(), hash); err != nil {
		s.abort(c, err)
		return
	}
	c.Set(principalKey, p)
	c.Set(sessionKey, sess)
	if !passiveRoutes[access.Key(c.Request.Method, c.FullPath())] {
		if err := s.signin.Touch(ctx, hash); err != nil {
			s.log.Warn("touch session", "err", err)
		}
	}
	c.Next()
}

const sessionKey = "openvisit.session"

func (s *Server) staffPolicy() session.Policy {
	return session.Policy{Idle: s.p.Auth.Idle, Absolute: s.p.Auth.Absolute}
}

func (s *Server) patientPolicy() session.Policy {
	return session.Policy{Idle: s.p.Auth.PatientIdle, Absolute: s.p.Auth.Absolute}
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authorize enforces the policy table for the matched route: the one place
// every route's access is decided.
func (s *Server) authorize(c *gin.Context) {
	if c.FullPath() == "" {
		c.Next() // unmatched: the page handler or a 404
		return
	}
	key := access.Key(c.Request.Method, c.FullPath())
	rule, ok := s.policy[key]
	if !ok {
		// A route without a rule is a bug; refuse rather than guess.
		s.abort(c, httpx.Wrap(httpx.KindInternal, "internal", "internal error", access.ErrNoRule))
		return
	}
	p := principal(c)
	if !isSafeMethod(c.Request.Method) && !rule.Bearer {
		var err error
		if rule.NoCSRF || p.Kind == access.Anonymous {
			err = csrf.CheckOrigin(c.Request, s.p.Origin)
		} else {
			err = csrf.Check(c.Request, s.p.Origin, p.CSRFToken)
		}
		if err != nil {
			s.deny(c, p, "csrf", httpx.E(httpx.KindForbidden, "csrf", "This request did not come from an OpenVisit page; reload the page and try again."))
			return
		}
	}
	visit, patient := "", ""
	if rule.VisitParam != "" {
		visit = c.Param(rule.VisitParam)
	}
	if rule.PatientParam != "" {
		patient = c.Param(rule.PatientParam)
	}
	d, err := access.Check(c.Request.Context(), rule, p, visit, patient, membership{s})
	switch {
	case err == nil:
	case errors.Is(err, access.ErrUnauthenticated) && rule.Bearer:
		s.auditSCIMRefusal(c)
		s.abort(c, httpx.E(httpx.KindUnauthenticated, "unauthenticated", "A valid bearer token is required."))
		return
	case errors.Is(err, access.ErrUnauthenticated):
		s.abort(c, httpx.E(httpx.KindUnauthenticated, "unauthenticated", "Please sign in."))
		return
	case errors.Is(err, access.ErrForbidden):
		s.deny(c, p, "role", httpx.E(httpx.KindForbidden, "forbidden", "You do not have access to this."))
		return
	case errors.Is(err, access.ErrNotFound):
		s.deny(c, p, "not a participant", errNotFound)
		return
	default:
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "unavailable", "The service is unavailable; try again shortly.", err))
		return
	}
	c.Set(breakGlassKey, d.BreakGlass)
	c.Next()
}

const breakGlassKey = "openvisit.break_glass"

// viaBreakGlass reports whether this request's access rests on an
// emergency grant; audit entries are flagged with it.
func viaBreakGlass(c *gin.Context) bool { return c.GetBool(breakGlassKey) }

var errNotFound = httpx.E(httpx.KindNotFound, "not_found", "Not found.")

// deny audits a refused request, then answers it.
func (s *Server) deny(c *gin.Context, p access.Principal, why string, e *httpx.Error) {
	s.auditLog(c, audit.Event{
		ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: actionAccessDenied,
		ResourceType: "route", ResourceID: c.Request.Method + " " + c.FullPath(), Outcome: audit.Denied, Reason: why,
	})
	s.abort(c, e)
}

// membership adapts the store to access.Membership.
type membership struct{ s *Server }

func (m membership) VisitRelation(ctx context.Context, p access.Principal, visit ids.VisitID) (bool, bool, error) {
	return store.VisitRelation(ctx, m.s.p.DB, p.UserID, visit, m.s.p.Now())
}

func (m membership) PatientRelation(ctx context.Context, p access.Principal, patient string) (bool, error) {
	return store.PatientRelation(ctx, m.s.p.DB, p.UserID, patient)
}

// auditLog appends e with the request's source. A failure is logged; for
// reads that must be audited before access, call s.p.Audit directly and
// refuse on error.
func (s *Server) auditLog(c *gin.Context, e audit.Event) {
	e.IP, e.UserAgent = httpx.ClientIP(c), httpx.UserAgent(c)
	s.record(c.Request.Context(), e)
}

// record appends e outside a transaction (the domains' refusals); a
// failure is logged and raised like auditLog's.
func (s *Server) record(ctx context.Context, e audit.Event) {
	if err := s.p.DB.Audit().Append(ctx, e); err != nil {
		s.auditFailed(ctx, e.Action, err)
	}
}

// auditFailed logs and raises an alert for an audit entry that could not
// be written.
func (s *Server) auditFailed(ctx context.Context, action string, err error) {
	s.log.Error("audit append failed", "action", action, "err", err)
	if s.p.Alerts != nil {
		s.p.Alerts.Raise(context.WithoutCancel(ctx), alerts.KindAuditWriteFailed, "", "audit entry "+action+" could not be written")
	}
}
