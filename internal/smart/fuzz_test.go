package smart_test

import (
	"strings"
	"testing"

	"github.com/openvisit/openvisit/internal/smart"
)

// FuzzParseAssertion: the token endpoint's parser of client assertions
// never panics, and accepts nothing over MaxAssertion or without a kid.
func FuzzParseAssertion(f *testing.F) {
	f.Add("eyJhbGciOiJFUzM4NCIsImtpZCI6ImsxIn0.eyJpc3MiOiJ4In0.c2ln")
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add(strings.Repeat("a", 100))
	f.Fuzz(func(t *testing.T, s string) {
		tok, _, err := smart.ParseAssertion(s)
		if err != nil {
			return
		}
		if len(s) > smart.MaxAssertion || len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
			t.Fatalf("accepted an assertion it should refuse: %q", s)
		}
	})
}
