package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/openvisit/openvisit"

// The layers of the import graph (doc.go), highest first. A package may
// import packages of a lower layer; within the bottom layer, anything (the
// compiler refuses cycles). Test files are not counted: a test may start
// whole processes.
const (
	layerBottom = iota + 1 // internal/*, sfu/*, recording/*, web: domain and infrastructure
	layerRole              // signaling, sfu, recording
	layerRoot              // internal/app, the composition root
	layerTop               // cmd/*, deploy/*, and the harnesses internal/e2e, internal/cluster and sfu/sfutest
)

var layerNames = map[int]string{
	layerBottom: "domain/infrastructure", layerRole: "role", layerRoot: "composition root", layerTop: "command or harness",
}

// layer places a package (its path relative to the module).
func layer(rel string) int {
	under := func(dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }
	switch {
	case under("cmd"), under("deploy"), under("internal/e2e"), under("internal/cluster"), under("sfu/sfutest"):
		return layerTop
	case rel == "internal/app":
		return layerRoot
	case rel == "signaling", rel == "sfu", rel == "recording":
		return layerRole
	}
	return layerBottom
}

// allowedSideways lists the imports between roles that today's code still
// makes. Each is debt, not design: remove the entry when the edge goes (the
// test fails while a listed edge no longer exists, so the list stays true).
var allowedSideways = map[string]string{}

// importViolation says what is wrong with from importing to, or "".
func importViolation(from, to string) string {
	lf, lt := layer(from), layer(to)
	switch {
	case lf == layerBottom && lt == layerBottom, lf > lt:
		return ""
	case lf == lt && allowedSideways[from+" -> "+to] != "":
		return ""
	case lf == lt:
		return fmt.Sprintf("%s imports %s: two packages of the %s layer must not import each other", from, to, layerNames[lf])
	}
	return fmt.Sprintf("%s (%s) imports %s (%s): imports point down, never up", from, layerNames[lf], to, layerNames[lt])
}

// TestImportDirection checks the real import graph (`go list`) against the
// layers of doc.go: no package imports one above it, and the three roles
// do not import each other beyond allowedSideways.
func TestImportDirection(t *testing.T) {
	graph := moduleImports(t)
	for _, want := range []string{"cmd/openvisit", "internal/app", "signaling", "sfu", "recording", "internal/store"} {
		if _, ok := graph[want]; !ok {
			t.Fatalf("go list did not report %s: the test no longer sees the module", want)
		}
	}
	seen := map[string]bool{}
	var bad []string
	for from, imports := range graph {
		for _, to := range imports {
			seen[from+" -> "+to] = true
			if v := importViolation(from, to); v != "" {
				bad = append(bad, v)
			}
		}
	}
	sort.Strings(bad)
	for _, v := range bad {
		t.Error(v)
	}
	for edge := range allowedSideways {
		if !seen[edge] {
			t.Errorf("allowedSideways lists %q, which no package imports any more: remove the entry", edge)
		}
	}
}

// TestImportViolation: the rule refuses what it should (so that
// TestImportDirection can fail).
func TestImportViolation(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"cmd/openvisit", "internal/app", true},
		{"cmd/openvisit", "signaling", true},
		{"internal/app", "sfu", true},
		{"signaling", "internal/store", true},
		{"recording", "recording/streamaead", true},
		{"internal/loadtest", "sfu/turn", true},
		{"internal/e2e", "internal/app", true},
		{"signaling", "recording", false},
		{"internal/store", "signaling", false},
		{"internal/visits", "internal/app", false},
		{"sfu/turn", "sfu", false},
		{"sfu", "signaling", false},
		{"recording", "sfu", false},
		{"signaling", "sfu", false},
		{"sfu", "internal/app", false},
		{"internal/app", "cmd/openvisit", false},
		{"internal/store", "internal/e2e", false},
	} {
		if got := importViolation(tc.from, tc.to) == ""; got != tc.ok {
			t.Errorf("%s -> %s allowed = %v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}
}

// moduleImports returns, for every package of the module, the module
// packages its non-test files import, as paths relative to the module.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	cmd := exec.Command(gocmd, "list", "-json", module+"/...")
	cmd.Dir = "../.." // the module root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	rel := func(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		var own []string
		for _, imp := range pkg.Imports {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				own = append(own, rel(imp))
			}
		}
		graph[rel(pkg.ImportPath)] = own
	}
	return graph
}
