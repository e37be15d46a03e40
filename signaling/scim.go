package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/scim"
	"github.com/openvisit/openvisit/internal/store"
)

// SCIM 2.0 provisioning (internal/scim) under /scim/v2: an identity
// provider's client authenticates with its bearer token, cookies are not
// read, and errors take SCIM's format.

const scimPrefix = "/scim/"

func isSCIM(c *gin.Context) bool { return strings.HasPrefix(c.FullPath(), scimPrefix) }

// scimRoutes: the Users endpoint and the discovery documents identity
// providers read. Only an identity provider's token opens them.
func (s *Server) scimRoutes() []route {
	idp := access.Rule{Allow: []kind{access.IdP}, Bearer: true}
	const u = "/scim/v2/Users"
	h := s.serveSCIM
	return []route{
		{http.MethodGet, u, h, idp},
		{http.MethodPost, u, h, idp},
		{http.MethodGet, u + "/:user_id", h, idp},
		{http.MethodPut, u + "/:user_id", h, idp},
		{http.MethodPatch, u + "/:user_id", h, idp},
		{http.MethodDelete, u + "/:user_id", h, idp},
		{http.MethodGet, "/scim/v2/ServiceProviderConfig", h, idp},
		{http.MethodGet, "/scim/v2/Schemas", h, idp},
		{http.MethodGet, "/scim/v2/ResourceTypes", h, idp},
	}
}

// authenticateBearer resolves an identity provider's bearer token; any
// other caller of a SCIM route stays anonymous.
func (s *Server) authenticateBearer(c *gin.Context) {
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok {
		c.Next()
		return
	}
	client, err := scim.Authenticate(c.Request.Context(), s.env(), strings.TrimSpace(tok))
	switch {
	case errors.Is(err, scim.ErrNoToken):
		c.Next()
		return
	case err != nil:
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "unavailable", "The service is unavailable; try again shortly.", err))
		return
	}
	c.Set(principalKey, access.Principal{Kind: access.IdP, ClientID: client.ID})
	c.Set(scimClientKey, client)
	c.Next()
}

const scimClientKey = "openvisit.scim_client"

// serveSCIM hands the request to the SCIM server with its client.
func (s *Server) serveSCIM(c *gin.Context) {
	client, ok := c.Get(scimClientKey)
	if !ok || s.scim == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "unavailable", "SCIM is not available."))
		return
	}
	if c.Request.Method == http.MethodPatch && c.Request.Body != nil {
		body, err := io.ReadAll(c.Request.Body) // bounded and checked by checkSCIMBody
		if err != nil {
			s.abort(c, httpx.E(httpx.KindInvalid, "bad_json", "The body could not be read."))
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(scim.NormalizePatch(body)))
	}
	r := c.Request.WithContext(scim.WithCaller(c.Request.Context(), scim.Caller{Client: client.(store.MachineClient),
		IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}))
	http.StripPrefix("/scim", s.scim).ServeHTTP(c.Writer, r)
}

// checkSCIMBody bounds a SCIM body (scim.MaxBody) and checks that it is
// one JSON value of storable text — no duplicate members, NUL or invalid
// UTF-8 — before the library reads it; the library validates it against
// the User schema.
func (s *Server) checkSCIMBody(c *gin.Context) error {
	if isSafeMethod(c.Request.Method) || c.Request.Body == nil {
		return nil
	}
	if c.Request.Method == http.MethodDelete {
		if c.Request.ContentLength != 0 {
			return httpx.E(httpx.KindInvalid, "bad_json", "DELETE takes no body.")
		}
		return nil
	}
	ct := c.ContentType()
	if ct != "application/scim+json" && ct != "application/json" {
		return httpx.E(httpx.KindInvalid, "bad_content_type", "Send application/scim+json.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, scim.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return httpx.E(httpx.KindTooLarge, "too_large", "The request body is too large.")
	}
	if err != nil {
		return httpx.E(httpx.KindInvalid, "bad_json", "The body is not valid JSON.")
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	return httpx.DecodeJSONBytes(body, new(map[string]any))
}

// scimErrorBody is RFC 7644 §3.12's error response.
type scimErrorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// abortSCIM answers a refusal of a SCIM route in SCIM's error format, with
// the status the one table (httpx) gives its kind.
func (s *Server) abortSCIM(c *gin.Context, e *httpx.Error) {
	status := httpx.Status(e.Kind)
	if status >= 500 {
		s.log.Error("scim request failed", "request_id", httpx.RequestID(c), "code", e.Code, "err", e)
	}
	scimType := ""
	if status == http.StatusBadRequest {
		scimType = "invalidSyntax"
	}
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="scim"`)
	}
	body, _ := json.Marshal(scimErrorBody{Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		Status: strconv.Itoa(status), ScimType: scimType, Detail: e.Message})
	c.Data(status, "application/scim+json", body)
	c.Abort()
}

// auditSCIMRefusal records a refused SCIM request (no or a bad token).
func (s *Server) auditSCIMRefusal(c *gin.Context) {
	reason := "no valid scim token"
	if isMachine(c) {
		reason = "no valid client token"
	}
	s.auditLog(c, audit.Event{ActorRole: string(access.Anonymous), Action: actionAccessDenied, ResourceType: "route",
		ResourceID: c.Request.Method + " " + c.FullPath(), Outcome: audit.Denied, Reason: reason})
}
