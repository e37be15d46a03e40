package signaling

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dynamicCodes are listed codes the source builds rather than writes
// whole: "bad_"+name in listRecordings' time filters.
var dynamicCodes = []string{"bad_from", "bad_to"}

// TestErrorCodesListed: errorCodes (the list the OpenAPI description
// publishes) is every code the source writes into an error answer —
// httpx.E/Wrap and their Code fields, the invites refusals, the media
// handler's header codes — and no code the source no longer writes.
func TestErrorCodesListed(t *testing.T) {
	written, literals := scanErrorCodes(t, "..")
	listed := map[string]bool{}
	for _, e := range errorCodes {
		if listed[e.code] {
			t.Errorf("error code %q is listed twice in signaling/openapi_errors.go", e.code)
		}
		listed[e.code] = true
	}
	for code, where := range written {
		if !listed[code] {
			t.Errorf("%s answers error code %q, which is not listed: add it, with its meaning, to errorCodes in signaling/openapi_errors.go", where, code)
		}
	}
	for _, e := range errorCodes {
		if _, ok := written[e.code]; !ok && !literals[e.code] && !slices.Contains(dynamicCodes, e.code) {
			t.Errorf("error code %q is listed in signaling/openapi_errors.go but no source writes it: remove it", e.code)
		}
	}
	if len(written) < 50 {
		t.Fatalf("found only %d codes: the scan is broken", len(written))
	}
}

// scanErrorCodes parses every non-test Go file under root: the codes
// written where an error answer is built (by position), and every string
// literal (for codes held in a constant or a table).
func scanErrorCodes(t *testing.T, root string) (map[string]string, map[string]bool) {
	written, literals := map[string]string{}, map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "web" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			for _, code := range codesAt(n) {
				written[code] = fset.Position(n.Pos()).String()
			}
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && filepath.Base(path) != "openapi_errors.go" {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					literals[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return written, literals
}

// codesAt returns the code literal an error-building node writes: the
// code argument of httpx.E, httpx.Wrap, badInput and mediaError, or the
// Code field of a composite literal (httpx.Error, invites.Refusal).
func codesAt(n ast.Node) []string {
	lit := func(e ast.Expr) []string {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			if s, err := strconv.Unquote(b.Value); err == nil {
				return []string{s}
			}
		}
		return nil
	}
	switch n := n.(type) {
	case *ast.CallExpr:
		name := ""
		switch fn := n.Fun.(type) {
		case *ast.SelectorExpr:
			if x, ok := fn.X.(*ast.Ident); ok && x.Name == "httpx" {
				name = fn.Sel.Name
			} else if x, ok := fn.X.(*ast.Ident); ok && x.Name == "s" && fn.Sel.Name == "mediaError" {
				name = "mediaError"
			}
		case *ast.Ident:
			name = fn.Name
		}
		switch {
		case (name == "E" || name == "Wrap" || name == "badInput") && len(n.Args) >= 2:
			return lit(n.Args[1])
		case name == "mediaError" && len(n.Args) >= 3:
			return lit(n.Args[2])
		}
	case *ast.KeyValueExpr:
		if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Code" {
			return lit(n.Value)
		}
	}
	return nil
}
