package signaling

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/httpx"
)

// The OpenAPI 3.1 description of /api/v1 is generated from the code: the
// paths and their access rules from the route tables (routes.go), each
// route's summary and answer from apiOps (openapi_ops.go), the request
// bodies from requestBodies, the schemas by reflecting the view structs
// (openapi_schema.go), the error codes from errorCodes. It is served at
// GET /api/v1/openapi.json; docs/openapi.json is a copy kept current by
// TestOpenAPIFileCurrent. TestOpenAPIMatchesRoutes (internal/app)
// compares it with the router, TestAPIResponsesMatchSpec validates every
// request and answer of the API tests against it.

// APIPrefix is the path prefix the description covers.
const APIPrefix = "/api/v1/"

// MediaErrorHeader carries the code of an error answered without a body
// (recording playback: mediaError).
const MediaErrorHeader = "X-Error-Code"

// openAPICache holds the description, built on first use (building it
// walks the route tables, whose ops table serves it: no initializer).
var openAPICache struct {
	once sync.Once
	b    []byte
	err  error
}

// OpenAPIJSON is the description as served.
func OpenAPIJSON() ([]byte, error) {
	openAPICache.once.Do(func() {
		openAPICache.b, openAPICache.err = json.MarshalIndent(OpenAPIDocument(), "", "  ")
	})
	return openAPICache.b, openAPICache.err
}

func (s *Server) serveOpenAPI(c *gin.Context) {
	b, err := OpenAPIJSON()
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", b)
}

// OpenAPIPath is a route pattern as OpenAPI writes it: gin's :param and
// *param become {param}.
func OpenAPIPath(ginPath string) string {
	parts := strings.Split(ginPath, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// OpenAPIDocument builds the description: one operation per entry of
// apiOps, with the access rule of the route table's route of that key.
func OpenAPIDocument() *openapi3.T {
	routes := map[string]Route{}
	for _, r := range (&Server{}).Routes() {
		routes[key(r.Method, r.Path)] = r
	}
	g := &schemas{components: openapi3.Schemas{}}
	doc := &openapi3.T{
		OpenAPI: "3.1.0",
		Info: &openapi3.Info{Title: "OpenVisit API", Version: "1",
			Description: "The /api/v1 surface of OpenVisit, generated from the route tables (signaling/routes.go) and the view structs. " +
				"Every error answer has the Error shape; its code is one of ErrorCode."},
		Servers: openapi3.Servers{{URL: "/"}},
		Paths:   openapi3.NewPaths(),
	}
	ops := apiOps()
	bodies := requestBodies()
	keys := slices.Sorted(mapsKeys(ops))
	for _, k := range keys {
		method, path, _ := strings.Cut(k, " ")
		op := operation(g, method, path, ops[k], routes[k], bodies[k])
		item := doc.Paths.Value(OpenAPIPath(path))
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(OpenAPIPath(path), item)
		}
		item.SetOperation(method, op)
	}
	g.components["Error"] = errorSchema(g)
	g.components["ErrorCode"] = errorCodeSchema()
	doc.Components = &openapi3.Components{
		Schemas: g.components,
		Responses: openapi3.ResponseBodies{"Error": &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("An error: the status follows error.code's kind (internal/httpx).").
			WithContent(openapi3.NewContentWithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/Error", nil)))}},
		SecuritySchemes: openapi3.SecuritySchemes{
			"session": {Value: openapi3.NewCSRFSecurityScheme().WithIn("cookie").WithName(SessionCookie).
				WithDescription("The session cookie set by sign-in, setup or invite redemption.")},
			"csrf": {Value: openapi3.NewCSRFSecurityScheme().WithIn("header").WithName("X-CSRF-Token").
				WithDescription("The session's csrf_token (SessionView), on every state-changing request of a session.")},
		},
	}
	return doc
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func sortStrings(s []string) { slices.Sort(s) }

// operation documents one route.
func operation(g *schemas, method, path string, op apiOp, r Route, body func() any) *openapi3.Operation {
	o := &openapi3.Operation{
		Summary:     op.summary,
		OperationID: operationID(method, path),
		Responses:   openapi3.NewResponses(openapi3.WithName("default", &openapi3.Response{})),
	}
	o.Responses.Delete("default")
	if r.Area != "" {
		o.Tags = []string{r.Area}
		o.Description = accessNote(r.Rule)
		o.Security = security(method, r.Rule)
	}
	o.Parameters = parameters(path, op.query)
	switch {
	case op.form != nil:
		o.RequestBody = formBody(op.form)
	case method != http.MethodGet:
		o.RequestBody = requestBody(body)
	}
	for _, st := range append([]int{op.status}, op.also...) {
		o.Responses.Set(fmt.Sprint(st), &openapi3.ResponseRef{Value: answer(g, op)})
	}
	errResp := &openapi3.ResponseRef{Ref: "#/components/responses/Error"}
	if op.mediaErrors {
		errResp = &openapi3.ResponseRef{Value: mediaErrorResponse()}
	}
	for _, st := range errorStatuses(method, path, r) {
		o.Responses.Set(fmt.Sprint(st), errResp)
	}
	o.Responses.Set("default", errResp)
	return o
}

// mediaErrorResponse is an error of a route a media element reads: the
// JSON Error from the access checks, or no body and the code in
// MediaErrorHeader from the handler (recordings.go mediaError).
func mediaErrorResponse() *openapi3.Response {
	r := openapi3.NewResponse().
		WithDescription("An error: the JSON Error from the access checks, or no body and the code in " + MediaErrorHeader + " from the media handler.").
		WithContent(openapi3.NewContentWithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/Error", nil)))
	r.Headers = openapi3.Headers{MediaErrorHeader: {Value: &openapi3.Header{Parameter: openapi3.Parameter{
		Schema: openapi3.NewSchemaRef("#/components/schemas/ErrorCode", nil)}}}}
	return r
}

// errorStatuses are the error answers every route of its kind can give,
// listed for readers; any other (a domain's 409, say) is the default
// answer, the same Error.
func errorStatuses(method, path string, r Route) []int {
	out := []int{http.StatusBadRequest} // bad input: parameters, body
	if r.Area != "" && !slices.Contains(r.Rule.Allow, access.Anonymous) {
		out = append(out, http.StatusUnauthorized)
	}
	if r.Area != "" && (len(r.Rule.Allow) < 3 || method != http.MethodGet) {
		out = append(out, http.StatusForbidden) // a role not allowed, or no CSRF token
	}
	if strings.Contains(path, "/:") {
		out = append(out, http.StatusNotFound)
	}
	if method != http.MethodGet {
		out = append(out, http.StatusRequestEntityTooLarge)
	}
	return append(out, http.StatusInternalServerError, http.StatusServiceUnavailable)
}

func operationID(method, path string) string {
	id := strings.ToLower(method)
	for _, p := range strings.Split(strings.TrimPrefix(path, APIPrefix), "/") {
		p = strings.TrimLeft(p, ":*")
		id += "_" + strings.NewReplacer("-", "_", ".", "_").Replace(p)
	}
	return id
}

// accessNote says who may call the route, from its rule.
func accessNote(rule access.Rule) string {
	who := make([]string, len(rule.Allow))
	for i, k := range rule.Allow {
		who[i] = string(k)
	}
	note := "Allowed: " + strings.Join(who, ", ") + "."
	if rule.VisitParam != "" {
		note += " Only within the visit (others get 404)."
	}
	return note
}

func security(method string, rule access.Rule) *openapi3.SecurityRequirements {
	if slices.Contains(rule.Allow, access.Anonymous) {
		return &openapi3.SecurityRequirements{}
	}
	req := openapi3.NewSecurityRequirement().Authenticate("session")
	if method != http.MethodGet && !rule.NoCSRF {
		req = req.Authenticate("csrf")
	}
	return &openapi3.SecurityRequirements{req}
}

func parameters(path string, query []string) openapi3.Parameters {
	var out openapi3.Parameters
	str := openapi3.NewStringSchema()
	for _, p := range strings.Split(path, "/") {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			out = append(out, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(p[1:]).WithSchema(str)})
		}
	}
	for _, q := range query {
		out = append(out, &openapi3.ParameterRef{Value: openapi3.NewQueryParameter(q).WithSchema(str)})
	}
	return out
}

// requestBody is the route's JSON body: the type it decodes into, or, for
// a route that reads none, an empty object (checkInput refuses any other).
func requestBody(body func() any) *openapi3.RequestBodyRef {
	rg := &schemas{components: openapi3.Schemas{}, request: true}
	var s *openapi3.SchemaRef
	if body != nil {
		s = rg.typeSchema(reflect.TypeOf(body()).Elem()) // requestBodies holds pointers to the types
	} else {
		s = rg.of(struct{}{})
	}
	return &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(false).
		WithContent(openapi3.NewContentWithJSONSchemaRef(s))}
}

// formBody is a form-encoded body (an OAuth token request, say): its
// fields are strings, the required ones listed.
func formBody(fields []string) *openapi3.RequestBodyRef {
	s := openapi3.NewObjectSchema()
	for _, f := range fields {
		name, optional := strings.CutSuffix(f, "?")
		s.Properties[name] = openapi3.NewStringSchema().NewRef()
		if !optional {
			s.Required = append(s.Required, name)
		}
	}
	return &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
		WithContent(openapi3.Content{"application/x-www-form-urlencoded": openapi3.NewMediaType().WithSchema(s)})}
}

func answer(g *schemas, op apiOp) *openapi3.Response {
	resp := openapi3.NewResponse().WithDescription(op.summary)
	if op.noBody {
		resp.Headers = openapi3.Headers{"Location": {Value: &openapi3.Header{Parameter: openapi3.Parameter{
			Schema: openapi3.NewStringSchema().NewRef()}}}}
		return resp
	}
	content := openapi3.Content{}
	if op.answer != nil {
		var s *openapi3.SchemaRef
		if h, ok := op.answer.(gin.H); ok {
			s = g.fields(h)
		} else {
			s = g.of(op.answer)
		}
		content["application/json"] = openapi3.NewMediaType().WithSchemaRef(s)
	}
	for _, m := range op.media {
		content[m] = openapi3.NewMediaType().WithSchema(&openapi3.Schema{})
	}
	resp.Content = content
	return resp
}

func errorSchema(g *schemas) *openapi3.SchemaRef {
	s := g.of(httpx.Body{})
	// Inline the body: Error is its one name; its code is the enum.
	body := *s.Value
	inner := *body.Properties["error"].Value
	delete(g.components, "httpx.Body")
	delete(g.components, "httpx.BodyError")
	inner.Properties = openapi3.Schemas{}
	for k, v := range body.Properties["error"].Value.Properties {
		inner.Properties[k] = v
	}
	inner.Properties["code"] = openapi3.NewSchemaRef("#/components/schemas/ErrorCode", nil)
	body.Properties = openapi3.Schemas{"error": openapi3.NewSchemaRef("", &inner)}
	return openapi3.NewSchemaRef("", &body)
}

func errorCodeSchema() *openapi3.SchemaRef {
	var desc strings.Builder
	desc.WriteString("The stable code of an error (error.code). The HTTP status follows its kind.\n\n| code | meaning |\n|---|---|\n")
	s := openapi3.NewStringSchema()
	for _, e := range errorCodes {
		s.Enum = append(s.Enum, e.code)
		fmt.Fprintf(&desc, "| `%s` | %s |\n", e.code, e.meaning)
	}
	s.Description = desc.String()
	return s.NewRef()
}
