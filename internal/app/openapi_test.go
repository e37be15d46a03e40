package app_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/signaling"
)

// TestOpenAPIMatchesRoutes: the OpenAPI description has exactly the
// /api/v1 routes — those the running router serves and those the route
// tables declare for optional areas (demo) — method and path, gin's :param
// as {param}. The failure says what to add or remove, and where.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := startServer(t)
	engine, ok := s.App.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("the app's handler is %T, not the gin engine", s.App.Handler())
	}
	routes := map[string]string{} // "METHOD /openapi/path" → how it is known
	for _, r := range engine.Routes() {
		if strings.HasPrefix(r.Path, signaling.APIPrefix) {
			routes[r.Method+" "+signaling.OpenAPIPath(r.Path)] = r.Method + " " + r.Path + " (served)"
		}
	}
	for _, r := range s.App.Signaling().Routes() {
		if strings.HasPrefix(r.Path, signaling.APIPrefix) {
			routes[r.Method+" "+signaling.OpenAPIPath(r.Path)] = r.Method + " " + r.Path + " (area " + r.Area + ")"
		}
	}
	if len(routes) < 50 {
		t.Fatalf("found only %d /api/v1 routes: the walk is broken", len(routes))
	}
	described := map[string]bool{}
	for path, item := range mustSpec(t).doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+path] = true
		}
	}
	var missing, stale []string
	for k, r := range routes {
		if !described[k] {
			method, path, _ := strings.Cut(r, " ")
			path, _, _ = strings.Cut(path, " ")
			missing = append(missing, "route "+r+" is not in the OpenAPI description; add to apiOps in signaling/openapi_ops.go:\n\t"+
				`key("`+method+`", "`+path+`"): ok("<what it does>", <prototype of its answer: a view struct or gin.H{...}>),`)
		}
	}
	for k := range described {
		if _, ok := routes[k]; !ok {
			stale = append(stale, "the description has "+k+" but no route serves or declares it; remove its line from apiOps in signaling/openapi_ops.go, or add the route to signaling/routes.go")
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, m := range append(missing, stale...) {
		t.Error(m)
	}

	// What the server serves is that description, to anyone.
	r := s.newClient(t).do("GET", "/api/v1/openapi.json", nil)
	want, _ := signaling.OpenAPIJSON()
	if r.Status != 200 || !bytes.Equal(r.Body, want) || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /api/v1/openapi.json = %d %q (%d bytes), want 200 application/json, the description", r.Status, r.Header.Get("Content-Type"), len(r.Body))
	}
}

// TestAPIResponsesMatchSpec: the checker every API test's client runs
// (specTransport) refuses what does not match the description — so that
// the ~100 API tests passing through it mean something — and a walk
// through the main flows matches it.
func TestAPIResponsesMatchSpec(t *testing.T) {
	sc := mustSpec(t)
	for name, ex := range map[string]struct {
		method, path, reqBody string
		status                int
		respBody              string
		wantIn                string
	}{
		"an answer missing a required member": {"GET", "/api/v1/auth/session", "", 200, `{"kind":"provider"}`, "does not match"},
		"an answer with an unlisted member":   {"GET", "/api/v1/admin/users", "", 200, `{"users":[],"secret":"x"}`, "does not match"},
		"an error code that is not listed":    {"GET", "/api/v1/auth/session", "", 401, `{"error":{"code":"no_such_code","message":"","request_id":"r"}}`, "does not match"},
		"an error without the Error shape":    {"GET", "/api/v1/auth/session", "", 401, `{"message":"no"}`, "does not match"},
		"a refused request accepted":          {"POST", "/api/v1/patients", `{"name":7}`, 201, `{}`, "refuses this request"},
		"an undescribed route answering":      {"GET", "/api/v1/no-such-route", "", 200, `{}`, "not in the description"},
		"a success status not described":      {"POST", "/api/v1/patients", `{}`, 200, `{}`, "does not match"},
	} {
		req := httptest.NewRequest(ex.method, "https://openvisit.test"+ex.path, strings.NewReader(ex.reqBody))
		if ex.reqBody != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp := &http.Response{StatusCode: ex.status, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			Body: io.NopCloser(strings.NewReader(ex.respBody))}
		msg := sc.check(req, []byte(ex.reqBody), resp, []byte(ex.respBody))
		if !strings.Contains(msg, ex.wantIn) {
			t.Errorf("%s: the checker said %q, want a complaint containing %q", name, msg, ex.wantIn)
		}
	}
	// A correct error answer passes.
	ok := `{"error":{"code":"unauthenticated","message":"sign in","request_id":"r"}}`
	req := httptest.NewRequest("GET", "https://openvisit.test/api/v1/auth/session", nil)
	resp := &http.Response{StatusCode: 401, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(ok))}
	if msg := sc.check(req, nil, resp, []byte(ok)); msg != "" {
		t.Errorf("a described error answer was refused: %s", msg)
	}
	checkNonJSONAnswers(t, sc)
	walkMainFlows(t, startServer(t))
}

// checkNonJSONAnswers: event streams and files are checked for status
// and content type, bodyless errors for their route and code.
func checkNonJSONAnswers(t *testing.T, sc *specChecker) {
	const chunk = "/api/v1/recordings/r1/chunks/0"
	for name, ex := range map[string]struct {
		path, contentType, errorCode string
		status                       int
		wantOK                       bool
	}{
		"an event stream":                  {"/api/v1/visits/v1/events", "text/event-stream", "", 200, true},
		"an event stream sent as HTML":     {"/api/v1/visits/v1/events", "text/html", "", 200, false},
		"a chunk":                          {chunk, "video/webm", "", 206, true},
		"a chunk with a status not listed": {chunk, "video/webm", "", 202, false},
		"a bodyless playback error":        {chunk, "", "not_found", 404, true},
		"a bodyless error, unlisted code":  {chunk, "", "no_such_code", 404, false},
		"a bodyless error on a JSON route": {"/api/v1/visits/v1/state", "", "not_found", 404, false},
	} {
		req := httptest.NewRequest("GET", "https://openvisit.test"+ex.path, nil)
		resp := &http.Response{StatusCode: ex.status, Header: http.Header{}, Body: http.NoBody}
		if ex.contentType != "" {
			resp.Header.Set("Content-Type", ex.contentType)
		}
		if ex.errorCode != "" {
			resp.Header.Set(signaling.MediaErrorHeader, ex.errorCode)
		}
		if msg := sc.check(req, nil, resp, nil); (msg == "") != ex.wantOK {
			t.Errorf("%s: the checker said %q, want ok=%v", name, msg, ex.wantOK)
		}
	}
}

// walkMainFlows calls the main routes once, as staff and as a patient;
// specTransport checks each exchange against the description.
func walkMainFlows(t *testing.T, s *server) {
	prov, adm := s.enrol(t, "walk-p@clinic.test", "provider"), s.enrol(t, "walk-a@clinic.test", "admin")
	c := s.newClient(t)
	c.mustLogin(prov)
	c.do("GET", "/api/v1/auth/session", nil)
	var pt struct{ ID string }
	c.do("POST", "/api/v1/patients", map[string]string{"name": "Walk Patient", "date_of_birth": "1980-02-03"}).decode(t, &pt)
	c.do("GET", "/api/v1/patients?q=Walk", nil)
	c.do("GET", "/api/v1/patients/"+pt.ID, nil)
	var v struct{ ID string }
	c.do("POST", "/api/v1/visits", struct{}{}).decode(t, &v)
	for _, p := range []string{"", "/state", "/recording"} {
		c.do("GET", "/api/v1/visits/"+v.ID+p, nil)
	}
	c.do("GET", "/api/v1/visits", nil)
	c.do("POST", "/api/v1/visits/"+v.ID+"/join", struct{}{})
	c.do("GET", "/api/v1/recordings", nil)
	c.do("GET", "/api/v1/account/passkeys", nil)
	c.do("POST", "/api/v1/visits/"+v.ID+"/end", struct{}{})
	c.do("POST", "/api/v1/auth/logout", struct{}{})

	a := s.newClient(t)
	a.mustLogin(adm)
	for _, p := range []string{"users", "users/dormant", "alerts", "break-glass", "audit?limit=5", "incidents"} {
		if r := a.do("GET", "/api/v1/admin/"+p, nil); r.Status != 200 {
			t.Errorf("GET /api/v1/admin/%s = %d %s", p, r.Status, r.Body)
		}
	}
	a.do("GET", "/api/v1/admin/audit/export?format=csv&limit=5", nil)
	a.do("GET", "/api/v1/openapi.json", nil)
}
