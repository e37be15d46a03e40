package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A govulncheck -format json stream: one standard-library and one module
// vulnerability called, one module vulnerability only present (no function
// in its trace).
const stream = `{"config":{"protocol_version":"v1.0.0"}}
{"osv":{"id":"GO-2000-0001","summary":"stdlib bug"}}
{"osv":{"id":"GO-2000-0002","summary":"module bug"}}
{"osv":{"id":"GO-2000-0003","summary":"present only"}}
{"finding":{"osv":"GO-2000-0003","fixed_version":"v1.2.0","trace":[{"module":"example.com/m","version":"v1.0.0"}]}}
{"finding":{"osv":"GO-2000-0001","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"ServeContent"},{"module":"example.com/ours","package":"example.com/ours","function":"main"}]}}
{"finding":{"osv":"GO-2000-0002","fixed_version":"v0.3.8","trace":[{"module":"golang.org/x/text","version":"v0.3.5","package":"golang.org/x/text/language","function":"Parse"}]}}
{"finding":{"osv":"GO-2000-0002","fixed_version":"v0.3.8","trace":[{"module":"golang.org/x/text","version":"v0.3.5","package":"golang.org/x/text/language","receiver":"*Matcher","function":"Match"}]}}
`

func TestVulncheckGate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stdlibOnly := write("stdlib", "# comment\nGO-2000-0001 needs a newer Go\n")
	both := write("both", "GO-2000-0001 needs a newer Go\nGO-2000-0002 trying to accept a module\n")
	stale := write("stale", "GO-2000-0001 newer Go\nGO-2000-0009 gone\n")
	for _, tc := range []struct {
		name, in, accept, expect string
		code                     int
		says                     []string
	}{
		{"called module and stdlib fail", stream, "", "", 1,
			[]string{"GO-2000-0001 CALLED", "GO-2000-0002 CALLED", "golang.org/x/text/language.Matcher.Match", "2 called"}},
		{"accepted stdlib still fails on the module", stream, stdlibOnly, "", 1,
			[]string{"GO-2000-0001 accepted (needs a newer Go)", "GO-2000-0002 CALLED", "1 called vulnerability"}},
		{"a module cannot be accepted", stream, both, "", 1, []string{"GO-2000-0002 CALLED"}},
		{"present but not called passes", strings.Join(strings.Split(stream, "\n")[:5], "\n"), "", "", 0,
			[]string{"no unaccepted called vulnerabilities"}},
		{"stale acceptance is named", "", stale, "", 0, []string{"GO-2000-0009 is accepted but no longer reported"}},
		{"canary found", stream, "", "GO-2000-0002", 0, []string{"canary GO-2000-0002 found"}},
		{"canary only present is not found", stream, "", "GO-2000-0003", 1, []string{"NOT found"}},
		{"empty scan misses the canary", "", "", "GO-2000-0002", 1, []string{"NOT found"}},
		{"garbage", "{not json", "", "", 2, []string{"reading govulncheck output"}},
		{"bad accept line", stream, write("bad", "GO-2000-0001\n"), "", 2, []string{"want"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if code := run(strings.NewReader(tc.in), &out, tc.accept, tc.expect); code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", code, tc.code, out.String())
			}
			for _, s := range tc.says {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}
