package signaling

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
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
