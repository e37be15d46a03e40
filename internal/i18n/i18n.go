// Package i18n holds the patient-facing message catalogues: one JSON file
// per language (web/static/i18n/<code>.json, a flat object of key → text),
// read by the browser pages and, through the same embedded files, by the
// server for the invite email and the calendar file. There is one
// catalogue, not one per side.
//
// The languages are the files: adding a language is adding a file. Each
// file names its language in its own words under the key "lang.name".
// English is the reference every other file must match key for key
// (TestCatalogueComplete); a key missing at run time falls back to English,
// then to the key itself, so a gap shows instead of breaking a page.
//
// Texts may hold placeholders, {name}, filled by T's pairs.
package i18n

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Default is the reference language and the fallback.
const Default = "en"

// NameKey is the key under which each file names its language.
const NameKey = "lang.name"

// maxFile bounds a catalogue file (they are ours, but a mistake should fail loudly).
const maxFile = 1 << 20

// codeRE is a language file's name: a BCP 47 primary tag, optionally with a region.
var codeRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z]{2})?$`)

// Language is one catalogue: its code (the file name) and its own name.
type Language struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// Catalogue is every language's messages. It is read once and never
// changes, so it is safe for concurrent use.
type Catalogue struct {
	langs []Language
	msgs  map[string]map[string]string
}

// Load reads every <code>.json in fsys's root. It fails on a file that is
// not a flat object of strings, and when the default language is missing.
func Load(fsys fs.FS) (*Catalogue, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, fmt.Errorf("i18n: %w", err)
	}
	c := &Catalogue{msgs: map[string]map[string]string{}}
	for _, name := range names {
		code := strings.TrimSuffix(path.Base(name), ".json")
		if !codeRE.MatchString(code) {
			return nil, fmt.Errorf("i18n: %s: the file name is not a language code", name)
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("i18n: %w", err)
		}
		m, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("i18n: %s: %w", name, err)
		}
		c.msgs[code] = m
		c.langs = append(c.langs, Language{Code: code, Name: m[NameKey]})
	}
	if _, ok := c.msgs[Default]; !ok {
		return nil, fmt.Errorf("i18n: no %s.json, the reference language", Default)
	}
	sort.Slice(c.langs, func(i, j int) bool { return c.langs[i].Code < c.langs[j].Code })
	return c, nil
}

// Parse decodes one catalogue file: a flat JSON object of non-empty strings.
func Parse(data []byte) (map[string]string, error) {
	if len(data) > maxFile {
		return nil, fmt.Errorf("larger than %d bytes", maxFile)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a flat object of strings: %w", err)
	}
	for k, v := range m {
		if k == "" || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("key %q: an empty key or text", k)
		}
	}
	if m[NameKey] == "" {
		return nil, fmt.Errorf("no %q naming the language", NameKey)
	}
	return m, nil
}

// Languages lists the catalogues by code.
func (c *Catalogue) Languages() []Language { return append([]Language(nil), c.langs...) }

// Has reports whether code is one of the catalogues.
func (c *Catalogue) Has(code string) bool {
	_, ok := c.msgs[code]
	return ok
}

// Keys are a language's keys, sorted.
func (c *Catalogue) Keys(code string) []string {
	keys := make([]string, 0, len(c.msgs[code]))
	for k := range c.msgs[code] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Lookup is the text of key in a language, without fallback.
func (c *Catalogue) Lookup(code, key string) (string, bool) {
	s, ok := c.msgs[code][key]
	return s, ok
}

// T is key's text in the language (English when that language lacks it,
// the key itself when English does too), with {placeholders} replaced by
// the pairs of kv: T("es", "email.when", "time", "10:30").
func (c *Catalogue) T(code, key string, kv ...string) string {
	s, ok := c.msgs[code][key]
	if !ok {
		if s, ok = c.msgs[Default][key]; !ok {
			s = key
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		s = strings.ReplaceAll(s, "{"+kv[i]+"}", kv[i+1])
	}
	return s
}

// placeholderRE finds {name} placeholders.
var placeholderRE = regexp.MustCompile(`\{[a-z_]+\}`)

// Placeholders are the distinct {names} in a text, sorted.
func Placeholders(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range placeholderRE.FindAllString(s, -1) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
