package phi

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestNameWords: names normalise to the words their index and a search
// agree on.
func TestNameWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Ada Lovelace", []string{"ada", "lovelace"}},
		{"  JOSÉ  O'Brien-Núñez ", []string{"jose", "obrien", "nunez"}},
		{"Zoë d’Arcy", []string{"zoe", "darcy"}},
		{"李 小龙", []string{"李", "小龙"}},
		{"", nil},
		{"--", nil},
	}
	for _, tt := range tests {
		if got := NameWords(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("NameWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := namePrefixes("Ann Anna"); !slices.Equal(got, []string{"an", "ann", "anna"}) {
		t.Errorf("prefixes of Ann Anna: %q", got)
	}
	if p, ok := queryPrefixes("a b"); ok || p != nil {
		t.Errorf("a search of one-letter words: %q, %v; want no match possible", p, ok)
	}
	if p, ok := queryPrefixes(""); !ok || p != nil {
		t.Errorf("an empty search: %q, %v; want everything", p, ok)
	}
}

// FuzzNameWords: the normalisation of a name or a search (network input:
// the search box, the admin's lookup, a new patient's name) never panics,
// gives lower-case words without separators, and every search prefix of a
// name's word is among that name's index prefixes.
func FuzzNameWords(f *testing.F) {
	for _, s := range []string{"Ada Lovelace", "José O'Brien-Núñez", "\xff\xfe", "a\u0301b", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words := NameWords(s)
		for _, w := range words {
			if w == "" || strings.ContainsFunc(w, func(r rune) bool { return unicode.IsSpace(r) || r == '\'' }) {
				t.Fatalf("word %q of %q", w, s)
			}
		}
		index := namePrefixes(s)
		q, _ := queryPrefixes(s)
		for _, p := range q {
			if utf8.RuneCountInString(p) > MaxPrefix || !slices.Contains(index, p) {
				t.Fatalf("search prefix %q of %q is not among its index prefixes", p, s)
			}
		}
	})
}
