package signaling

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"google.golang.org/protobuf/proto"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/fhir"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/smart"
)

// FHIR R4 (internal/fhir) under /fhir/R4 for EHRs' machine clients, and
// the token endpoint where they trade a signed assertion for an access
// token (internal/smart). Cookies are never read on these routes; errors
// are OperationOutcome (FHIR) or OAuth 2.0 error bodies (the token
// endpoint).

const (
	fhirBase  = "/fhir/R4"
	tokenPath = "/oauth/token"
	// maxTokenForm bounds the token endpoint's form body.
	maxTokenForm = 16 << 10
	fhirJSON     = "application/fhir+json"
)

func isFHIR(c *gin.Context) bool { return strings.HasPrefix(c.FullPath(), fhirBase+"/") }

// isMachine: a route for machine clients with bearer tokens (no cookies).
func isMachine(c *gin.Context) bool { return isFHIR(c) || c.FullPath() == tokenPath }

// fhirRoutes: the token endpoint and the FHIR interactions. The
// CapabilityStatement, SMART discovery and the token endpoint are open; the rest needs a
// client's access token, and each handler checks the token's scope.
func (s *Server) fhirRoutes() []route {
	open := access.Rule{Allow: []kind{access.Anonymous, access.Client}, Bearer: true}
	client := access.Rule{Allow: []kind{access.Client}, Bearer: true}
	const a = fhirBase + "/Appointment"
	return []route{
		{http.MethodPost, tokenPath, s.issueToken, open},
		{http.MethodGet, fhirBase + "/metadata", s.fhirMetadata, open},
		{http.MethodGet, fhirBase + "/.well-known/smart-configuration", s.smartConfiguration, open},
		{http.MethodGet, fhirBase + "/Patient/:patient_id", s.fhirReadPatient, client},
		{http.MethodGet, fhirBase + "/Patient", s.fhirSearchPatients, client},
		{http.MethodPost, a, s.fhirCreateAppointment, client},
		{http.MethodGet, a + "/:visit_id", s.fhirReadAppointment, client},
		{http.MethodGet, a, s.fhirSearchAppointments, client},
		{http.MethodPut, a + "/:visit_id", s.fhirUpdateAppointment, client},
		{http.MethodPatch, a + "/:visit_id", s.fhirPatchAppointment, client},
		{http.MethodGet, fhirBase + "/Encounter/:visit_id", s.fhirReadEncounter, client},
	}
}

// tokenURL is the token endpoint's absolute URL: every assertion's aud.
func (s *Server) tokenURL() string { return strings.TrimRight(s.p.PublicURL, "/") + tokenPath }

func (s *Server) fhirBaseURL() string { return strings.TrimRight(s.p.PublicURL, "/") + fhirBase }

const clientCallerKey = "openvisit.client_caller"

// authenticateClient resolves a machine client's access token on a FHIR
// route and applies its rate limit; any other caller stays anonymous (and
// the policy refuses it).
func (s *Server) authenticateClient(c *gin.Context) {
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || !isFHIR(c) {
		c.Next()
		return
	}
	caller, err := smart.Authenticate(c.Request.Context(), s.env(), strings.TrimSpace(tok))
	switch {
	case errors.Is(err, smart.ErrNoToken):
		c.Next()
		return
	case err != nil:
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "unavailable", "The service is unavailable; try again shortly.", err))
		return
	}
	p := access.Principal{Kind: access.Client, ClientID: caller.Client.ID}
	c.Set(principalKey, p)
	c.Set(clientCallerKey, caller)
	if ok, wait := s.clientLimiter.Allow("client:" + caller.Client.ID); !ok {
		s.deny(c, p, "rate limited", &httpx.Error{Kind: httpx.KindRateLimited, Code: "rate_limited",
			Message: "Too many requests; slow down.", RetryAfter: int(wait/time.Second) + 1})
		return
	}
	c.Next()
}

// fhirCaller is the request's client when its token grants access to
// resource; otherwise it answers 403 (audited) and reports false.
func (s *Server) fhirCaller(c *gin.Context, resource string, a smart.Access) (smart.Caller, bool) {
	v, ok := c.Get(clientCallerKey)
	caller, _ := v.(smart.Caller)
	if !ok || !caller.Allows(resource, a) {
		s.deny(c, principal(c), "scope", httpx.E(httpx.KindForbidden, "insufficient_scope",
			"The access token's scopes do not allow "+string(a)+" of "+resource+"."))
		return caller, false
	}
	return caller, true
}

// clientEvent is the audit entry of a client's FHIR call.
func (s *Server) clientEvent(c *gin.Context) audit.Event {
	return audit.Event{ActorID: principal(c).ClientID, ActorRole: smart.ActorRole, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
}

// issueToken is the token endpoint (SMART Backend Services).
func (s *Server) issueToken(c *gin.Context) {
	if ok, wait := s.clientLimiter.Allow("token:" + httpx.ClientIP(c)); !ok {
		s.abort(c, &httpx.Error{Kind: httpx.KindRateLimited, Code: "rate_limited", Message: "Too many requests; slow down.",
			RetryAfter: int(wait/time.Second) + 1})
		return
	}
	req := smart.TokenRequest{GrantType: c.PostForm("grant_type"), AssertionType: c.PostForm("client_assertion_type"),
		Assertion: c.PostForm("client_assertion"), Scope: c.PostForm("scope")}
	is := smart.Issuer{Env: s.env(), TokenURL: s.tokenURL()}
	tok, err := is.Issue(c.Request.Context(), req, audit.Event{IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)})
	var e *smart.Error
	switch {
	case errors.As(err, &e):
		status := http.StatusBadRequest
		if e.Code == "invalid_client" {
			status = http.StatusUnauthorized
		}
		c.Header("Cache-Control", "no-store")
		c.AbortWithStatusJSON(status, gin.H{"error": e.Code})
		return
	case err != nil:
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, tok)
}

// fhirWrite answers resource r, validated and written by the codec.
func (s *Server) fhirWrite(c *gin.Context, status int, r proto.Message) {
	if s.fhir == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "unavailable", "FHIR is not available."))
		return
	}
	body, err := s.fhir.Encode(r)
	if err != nil {
		s.abort(c, httpx.Wrap(httpx.KindInternal, "internal", "internal error", err))
		return
	}
	c.Data(status, fhirJSON+"; charset=utf-8", body)
}

// issueTypes: an error kind as an OperationOutcome issue type.
var issueTypes = map[httpx.Kind]cpb.IssueTypeCode_Value{
	httpx.KindInvalid:         cpb.IssueTypeCode_INVALID,
	httpx.KindUnauthenticated: cpb.IssueTypeCode_LOGIN,
	httpx.KindForbidden:       cpb.IssueTypeCode_FORBIDDEN,
	httpx.KindNotFound:        cpb.IssueTypeCode_NOT_FOUND,
	httpx.KindConflict:        cpb.IssueTypeCode_CONFLICT,
	httpx.KindTooLarge:        cpb.IssueTypeCode_TOO_LONG,
	httpx.KindRateLimited:     cpb.IssueTypeCode_THROTTLED,
	httpx.KindUnavailable:     cpb.IssueTypeCode_TRANSIENT,
	httpx.KindInternal:        cpb.IssueTypeCode_EXCEPTION,
}

// abortMachine answers a refusal of a FHIR route as an OperationOutcome,
// or of the token endpoint as an OAuth error, with the status the one
// table (httpx) gives its kind.
func (s *Server) abortMachine(c *gin.Context, e *httpx.Error) {
	status := httpx.Status(e.Kind)
	if status >= 500 {
		s.log.Error("fhir request failed", "request_id", httpx.RequestID(c), "code", e.Code, "err", e)
	}
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="fhir"`)
	}
	if !isFHIR(c) || s.fhir == nil {
		c.AbortWithStatusJSON(status, gin.H{"error": "invalid_request", "error_description": e.Message})
		return
	}
	msg := e.Message
	if msg == "" {
		msg = e.Code
	}
	body, err := s.fhir.Encode(fhir.Outcome(cpb.IssueSeverityCode_ERROR, issueTypes[e.Kind], msg+" ("+e.Code+")"))
	if err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Data(status, fhirJSON+"; charset=utf-8", body)
	c.Abort()
}

// checkMachineBody bounds the body of a FHIR or token request and checks
// its media type; the FHIR codec (or the form parser) reads it after.
func (s *Server) checkMachineBody(c *gin.Context) error {
	if isSafeMethod(c.Request.Method) || c.Request.Body == nil {
		return nil
	}
	limit, types := int64(fhir.MaxBody), []string{fhirJSON, "application/json"}
	switch {
	case c.FullPath() == tokenPath:
		limit, types = maxTokenForm, []string{"application/x-www-form-urlencoded"}
	case c.Request.Method == http.MethodPatch:
		types = []string{"application/json-patch+json"}
	}
	ct := c.ContentType()
	if !slices.Contains(types, ct) {
		return httpx.E(httpx.KindInvalid, "bad_content_type", "Send "+types[0]+".")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return httpx.E(httpx.KindTooLarge, "too_large", "The request body is too large.")
	}
	if err != nil {
		return httpx.E(httpx.KindInvalid, "bad_body", "The body could not be read.")
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// fhirMetadata answers the CapabilityStatement.
func (s *Server) fhirMetadata(c *gin.Context) {
	if s.fhir == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "unavailable", "FHIR is not available."))
		return
	}
	cs, err := s.fhir.Capability(s.fhirBaseURL(), s.tokenURL())
	if err != nil {
		s.abort(c, httpx.Wrap(httpx.KindInternal, "internal", "internal error", err))
		return
	}
	s.fhirWrite(c, http.StatusOK, cs)
}

// smartConfiguration answers SMART discovery: the token endpoint and
// what it accepts (internal/smart).
func (s *Server) smartConfiguration(c *gin.Context) {
	c.JSON(http.StatusOK, smart.Discovery(s.tokenURL()))
}

// fhirService is the FHIR operations on this server's database and nodes.
func (s *Server) fhirService() *fhir.Service {
	return &fhir.Service{Env: s.env(), Scheduler: s.scheduler()}
}

// decodeFHIR reads the request's resource through the codec.
func (s *Server) decodeFHIR(c *gin.Context) (*bcrpb.ContainedResource, bool) {
	if s.fhir == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "unavailable", "FHIR is not available."))
		return nil, false
	}
	body, err := io.ReadAll(c.Request.Body) // bounded by checkMachineBody
	if err == nil {
		var r *bcrpb.ContainedResource
		if r, err = s.fhir.Decode(body); err == nil {
			return r, true
		}
	}
	s.abort(c, httpx.Wrap(httpx.KindInvalid, "invalid_resource", err.Error(), err))
	return nil, false
}
