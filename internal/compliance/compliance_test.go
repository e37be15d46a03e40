package compliance

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/openvisit/openvisit/internal/config"
)

var update = flag.Bool("update", false, "rewrite docs/compliance/phi-inventory.md from the declaration")

// root is the repository root, from this package's directory.
const root = "../.."

// MappingPath is the safeguard mapping, relative to the repository root.
const MappingPath = "docs/compliance/safeguards.md"

// TestPHIInventoryCurrent: the inventory in docs/compliance is what the
// generator makes of internal/phi's declaration.
func TestPHIInventoryCurrent(t *testing.T) {
	path := filepath.Join(root, InventoryPath)
	want := Inventory()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what internal/phi declares; run `go test ./internal/compliance -run TestPHIInventoryCurrent -update`", InventoryPath)
	}
}

// mappingRow is one safeguard of the mapping.
type mappingRow struct {
	citation, feature string
	tests, keys       []string
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	testName   = regexp.MustCompile(`^Test[A-Za-z0-9_]+$`)
	configKey  = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*$`)
	testFunc   = regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
)

// parseMapping reads the rows of the mapping's tables whose first cell is
// a citation (164.…): | citation | safeguard | feature | config | tests |.
func parseMapping(t *testing.T, body string) []mappingRow {
	t.Helper()
	var rows []mappingRow
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "| 164.") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 5 {
			t.Fatalf("mapping row has %d cells, want 5 (citation, safeguard, feature, config, tests): %s", len(cells), line)
		}
		r := mappingRow{citation: cells[0], feature: cells[2]}
		for _, m := range backticked.FindAllStringSubmatch(cells[3], -1) {
			r.keys = append(r.keys, m[1])
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[4], -1) {
			r.tests = append(r.tests, m[1])
		}
		rows = append(rows, r)
	}
	return rows
}

// testFunctions lists every func TestX( in the repository's *_test.go.
func testFunctions(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllSubmatch(body, -1) {
			out[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// configKeys lists every config key (database.url) the loader knows.
func configKeys() map[string]bool {
	out := map[string]bool{}
	for _, env := range config.EnvNames() {
		out[strings.TrimPrefix(env, config.EnvPrefix)] = true
	}
	return out
}

// TestComplianceMappingCurrent: every test function and config key the
// 45 CFR 164.308/164.312 mapping names exists, every row names a test
// unless its feature is the clinic's own policy, and both parts of the
// rule are mapped.
func TestComplianceMappingCurrent(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(root, MappingPath))
	if err != nil {
		t.Fatal(err)
	}
	rows := parseMapping(t, string(body))
	tests, keys := testFunctions(t), configKeys()
	parts := map[string]int{}
	for _, r := range rows {
		parts[r.citation[:7]]++
		if len(r.tests) == 0 && !strings.Contains(r.feature, "(clinic policy)") {
			t.Errorf("%s names no test (and is not marked \"(clinic policy)\")", r.citation)
		}
		for _, name := range r.tests {
			if !testName.MatchString(name) || !tests[name] {
				t.Errorf("%s names test %s, which no *_test.go defines", r.citation, name)
			}
		}
		for _, k := range r.keys {
			env := strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
			if !configKey.MatchString(k) || !keys[env] {
				t.Errorf("%s names config key %s, which internal/config does not know", r.citation, k)
			}
		}
	}
	for _, p := range []string{"164.308", "164.312"} {
		if parts[p] < 5 {
			t.Errorf("the mapping has %d rows for %s", parts[p], p)
		}
	}
}

// TestMappingCheckFails: the check above can fail — a removed test and an
// unknown key are caught.
func TestMappingCheckFails(t *testing.T) {
	rows := parseMapping(t, "| 164.312(b) | Audit controls | the trail | `audit.no_such_key` | `TestNoSuchTest` |\n")
	if len(rows) != 1 || rows[0].tests[0] != "TestNoSuchTest" || rows[0].keys[0] != "audit.no_such_key" {
		t.Fatalf("parsed %+v", rows)
	}
	if testFunctions(t)["TestNoSuchTest"] || configKeys()["AUDIT_NO_SUCH_KEY"] {
		t.Fatal("a missing test or key was found")
	}
	if !testFunctions(t)["TestMappingCheckFails"] || !configKeys()["AUDIT_ANCHOR_BUCKET"] {
		t.Fatal("an existing test or key was not found")
	}
}
