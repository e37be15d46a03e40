package signaling

import (
	"context"
	"flag"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"
)

var updateOpenAPI = flag.Bool("update", false, "rewrite docs/openapi.json")

// TestOpenAPIValid loads the served description as a client would and
// validates it as OpenAPI 3.1.
func TestOpenAPIValid(t *testing.T) {
	b, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
}

// TestOpenAPIFileCurrent: docs/openapi.json is the served description
// (go test ./signaling -run TestOpenAPIFileCurrent -update rewrites it).
func TestOpenAPIFileCurrent(t *testing.T) {
	b, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	const file = "../docs/openapi.json"
	if *updateOpenAPI {
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(file)
	if err != nil || string(have) != string(b) {
		t.Fatalf("docs/openapi.json is not the served description; run: go test ./signaling -run TestOpenAPIFileCurrent -update")
	}
}

// TestOpenAPIFormBody: a route that reads a form (an OAuth token request)
// is described so that a request missing a required field is refused.
func TestOpenAPIFormBody(t *testing.T) {
	g := &schemas{components: openapi3.Schemas{}}
	op := operation(g, "POST", "/api/v1/token", apiOp{summary: "A token.", status: 200, answer: gin.H{"access_token": ""},
		form: []string{"grant_type", "client_assertion", "scope?"}}, Route{}, nil)
	doc := &openapi3.T{OpenAPI: "3.1.0", Info: &openapi3.Info{Title: "t", Version: "1"}, Paths: openapi3.NewPaths(),
		Servers: openapi3.Servers{{URL: "/"}}, Components: &openapi3.Components{Schemas: g.components,
			Responses: openapi3.ResponseBodies{"Error": &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("e")}}}}
	doc.Paths.Set("/api/v1/token", &openapi3.PathItem{Post: op})
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for body, wantOK := range map[string]bool{"grant_type=x&client_assertion=y": true, "grant_type=x": false} {
		req := httptest.NewRequest("POST", "/api/v1/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route})
		if (err == nil) != wantOK {
			t.Errorf("form %q: validation error %v, want ok=%v", body, err, wantOK)
		}
	}
}
