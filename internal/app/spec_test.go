package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/openvisit/openvisit/signaling"
)

// Every request the API tests make through a client (newClient) passes
// through specTransport, which checks it and its answer against the
// OpenAPI description the server publishes (signaling.OpenAPIJSON), with
// kin-openapi's openapi3filter (JSON Schema 2020-12 for an OpenAPI 3.1
// document). So the API tests are also the description's tests:
//
//   - a path under /api/v1/ that the description lacks must be answered
//     404 or 405 (a test probing an unknown path); any other answer fails;
//   - a request the description refuses (a wrong body, a missing member
//     type) must be refused by the server too, with a 4xx: a test that
//     sends bad input on purpose passes, a server that accepts what the
//     description forbids fails;
//   - every answer must match the description: the status and body of a
//     success, the Error shape and a listed code of an error. Event
//     streams and files (non-JSON answers) are checked for status and
//     content type only.

// spec is the loaded description and its router, shared by every test.
var spec = sync.OnceValues(func() (*specChecker, error) {
	b, err := signaling.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load the description: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the description is not valid OpenAPI: %w", err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &specChecker{doc: doc, router: r}, nil
})

type specChecker struct {
	doc    *openapi3.T
	router routers.Router
}

func mustSpec(t testing.TB) *specChecker {
	t.Helper()
	sc, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// specTransport validates each /api/v1 exchange; failures are the test's
// errors (t.Errorf: the test goes on and reports every mismatch).
type specTransport struct {
	t    testing.TB
	next http.RoundTripper
}

func (st specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.Path, signaling.APIPrefix) {
		return st.next.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := st.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	var respBody []byte
	if isJSON(resp.Header.Get("Content-Type")) {
		respBody, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(respBody))
		if err != nil {
			return resp, err
		}
	}
	if msg := mustSpec(st.t).check(req, reqBody, resp, respBody); msg != "" {
		st.t.Errorf("OpenAPI: %s %s → %d: %s", req.Method, req.URL.Path, resp.StatusCode, msg)
	}
	return resp, nil
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// check returns what is wrong with one exchange, or "".
func (sc *specChecker) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := sc.router.FindRoute(r)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return ""
		}
		return fmt.Sprintf("the route is not in the description (%v): add its line to apiOps in signaling/openapi_ops.go", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr != nil && resp.StatusCode < 400 {
		return fmt.Sprintf("the description refuses this request but the server accepted it: %v", reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if !isJSON(resp.Header.Get("Content-Type")) && resp.StatusCode < 400 {
		return sc.checkMedia(route, resp)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") == "" && len(respBody) == 0 {
		return sc.checkBodylessError(route, resp)
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Sprintf("the answer does not match the description: %v\nbody: %.600s", err, respBody)
	}
	return ""
}

// checkMedia checks a non-JSON answer (an event stream, a file, a
// redirect): its status is declared, and its content type among the
// declared ones.
func (sc *specChecker) checkMedia(route *routers.Route, resp *http.Response) string {
	rr := route.Operation.Responses.Status(resp.StatusCode)
	if rr == nil || rr.Value == nil {
		return fmt.Sprintf("status %d is not declared", resp.StatusCode)
	}
	if len(rr.Value.Content) == 0 {
		return "" // no body declared (a redirect)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if rr.Value.Content.Get(mt) == nil {
		return fmt.Sprintf("content type %q is not declared for status %d", mt, resp.StatusCode)
	}
	return ""
}

// checkBodylessError checks an error answered without a body (recording
// playback): the route declares such errors, and the code is listed.
func (sc *specChecker) checkBodylessError(route *routers.Route, resp *http.Response) string {
	rr := route.Operation.Responses.Status(resp.StatusCode)
	if rr == nil {
		rr = route.Operation.Responses.Default()
	}
	if rr == nil || rr.Value == nil || rr.Value.Headers[signaling.MediaErrorHeader] == nil {
		return "an error without a body, on a route whose errors are the JSON Error"
	}
	code := resp.Header.Get(signaling.MediaErrorHeader)
	if err := sc.doc.Components.Schemas["ErrorCode"].Value.VisitJSON(code); err != nil {
		return fmt.Sprintf("%s %q is not a listed error code", signaling.MediaErrorHeader, code)
	}
	return ""
}
