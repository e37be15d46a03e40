package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/openvisit/openvisit/internal/i18n"
)

// Where catalogue keys are used: the pages and their modules (served from
// static/) and the server's Go code that words the invite email and the
// calendar file.
var (
	htmlKeyRE = regexp.MustCompile(`data-i18n="([^"]+)"|"i18n" "([^"]+)"`)
	attrKeyRE = regexp.MustCompile(`data-i18n-attr="([^"]+)"`)
	// A JS string literal that looks like a key of one of the catalogue's
	// namespaces (join.…, call.…): t('…'), tr(el, '…'), tables of keys.
	jsKeyRE = regexp.MustCompile(`'([a-z]+(?:\.[a-z0-9_]+)+)'`)
	// And any key passed straight to t, tr or sayT, whatever its namespace
	// (a new one that no catalogue has yet).
	jsCallRE = regexp.MustCompile(`\b(?:t|tr|sayT)\((?:[\w.]+, )?'([a-z][a-z0-9_.]*)'`)
	// Go: T(lang, "key") and the invitation's t("key").
	goKeyRE = regexp.MustCompile(`\b[Tt]\((?:[a-zA-Z.]+, )?"([a-z]+(?:\.[a-z0-9_]+)+)"`)
)

// usedKeys scans the pages, modules and the Go code for catalogue keys,
// each with where it was seen.
func usedKeys(t *testing.T, namespaces map[string]bool) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(key, where string) {
		if !namespaces[strings.SplitN(key, ".", 2)[0]] {
			return
		}
		used[key] = append(used[key], where)
	}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".html":
			for _, m := range htmlKeyRE.FindAllStringSubmatch(string(data), -1) {
				add(m[1]+m[2], p)
			}
			for _, m := range attrKeyRE.FindAllStringSubmatch(string(data), -1) {
				for _, pair := range strings.Split(m[1], ";") {
					if _, key, ok := strings.Cut(pair, ":"); ok {
						add(strings.TrimSpace(key), p)
					}
				}
			}
		case ".js":
			for _, m := range jsKeyRE.FindAllStringSubmatch(string(data), -1) {
				add(m[1], p)
			}
			for _, line := range strings.Split(string(data), "\n") {
				if l := strings.TrimSpace(line); strings.HasPrefix(l, "//") || strings.HasPrefix(l, "*") {
					continue // comments show how to call t()
				}
				for _, m := range jsCallRE.FindAllStringSubmatch(line, -1) {
					used[m[1]] = append(used[m[1]], p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	goFiles, err := filepath.Glob("../signaling/*.go")
	if err != nil || len(goFiles) == 0 {
		t.Fatalf("no Go files to scan in ../signaling: %v", err)
	}
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKeyRE.FindAllStringSubmatch(string(data), -1) {
			add(m[1], f)
		}
	}
	// Keys the Go code builds from numbers (the email's date).
	for d := 0; d < 7; d++ {
		add("date.weekday."+strconv.Itoa(d), "signaling/invitemail.go")
	}
	for m := 1; m <= 12; m++ {
		add("date.month."+strconv.Itoa(m), "signaling/invitemail.go")
	}
	return used
}

// TestCatalogueComplete: every key the pages, their modules and the
// server's email and calendar code use exists in every language, every
// language has every key of English (and none English lacks), and a
// translation keeps the English text's {placeholders}. A failure names the
// key, the language and where the key is used.
func TestCatalogueComplete(t *testing.T) {
	cat, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	langs := cat.Languages()
	if len(langs) < 2 {
		t.Fatalf("catalogues %v: want English and at least one more", langs)
	}
	namespaces := map[string]bool{}
	for _, k := range cat.Keys(i18n.Default) {
		namespaces[strings.SplitN(k, ".", 2)[0]] = true
	}
	used := usedKeys(t, namespaces)
	for _, must := range []string{"join.dob.legend", "call.ended.title", "email.invite.subject", "ics.summary", "join.step"} {
		if len(used[must]) == 0 {
			t.Errorf("the scan did not find key %q in use: the scanner no longer sees the pages or the Go code", must)
		}
	}
	keys := make([]string, 0, len(used))
	for k := range used {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, l := range langs {
		for _, k := range keys {
			if _, ok := cat.Lookup(l.Code, k); !ok {
				t.Errorf("key %q (used in %s) is missing in %s.json", k, strings.Join(dedupe(used[k]), ", "), l.Code)
			}
		}
		if l.Code == i18n.Default {
			continue
		}
		for _, k := range cat.Keys(i18n.Default) {
			en, _ := cat.Lookup(i18n.Default, k)
			s, ok := cat.Lookup(l.Code, k)
			if !ok {
				t.Errorf("key %q of en.json is missing in %s.json", k, l.Code)
				continue
			}
			if allowed, ok := formatKeys[k]; ok {
				for _, p := range i18n.Placeholders(s) {
					if !allowed[p] {
						t.Errorf("key %q in %s.json has placeholder %s; the code fills only %v", k, l.Code, p, allowed)
					}
				}
			} else if a, b := i18n.Placeholders(en), i18n.Placeholders(s); strings.Join(a, ",") != strings.Join(b, ",") {
				t.Errorf("key %q in %s.json has placeholders %v, en.json %v", k, l.Code, b, a)
			}
		}
		for _, k := range cat.Keys(l.Code) {
			if _, ok := cat.Lookup(i18n.Default, k); !ok {
				t.Errorf("key %q of %s.json is not in en.json (a typo, or a key English lacks)", k, l.Code)
			}
		}
	}
}

// formatKeys are the texts that are formats rather than sentences: a
// language picks among the placeholders the code fills (a 12- or 24-hour
// clock), so they need not match English's.
var formatKeys = map[string]map[string]bool{
	"date.time": {"{h12}": true, "{h24}": true, "{mm}": true, "{ampm}": true},
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// The language switch on the patient pages and the provider's choice list
// the catalogue files, each in its own name.
func TestLanguageSwitchListsCatalogues(t *testing.T) {
	cat, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	h := Handler("")
	for _, route := range []string{"/join", "/call", "/provider"} {
		body := get(t, h, route)
		for _, l := range cat.Languages() {
			opt := `<option value="` + l.Code + `" lang="` + l.Code + `">` + l.Name + `</option>`
			if !strings.Contains(body, opt) {
				t.Errorf("%s: no option %s", route, opt)
			}
		}
	}
	if body := get(t, h, "/i18n/es.json"); !strings.Contains(body, `"lang.name": "Español"`) {
		t.Errorf("/i18n/es.json not served: %.80q", body)
	}
}

// A third language is one file: dropped next to the others, it is loaded
// and listed with no other change.
func TestThirdLanguageIsOneFile(t *testing.T) {
	fsys := fstest.MapFS{}
	sub, err := fs.Sub(static, "static/i18n")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"en.json", "es.json"} {
		data, err := fs.ReadFile(sub, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: data}
	}
	fsys["fr.json"] = &fstest.MapFile{Data: []byte(`{"lang.name": "Français", "join.dob.submit": "Continuer"}`)}
	cat, err := i18n.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, l := range cat.Languages() {
		codes = append(codes, l.Code+"="+l.Name)
	}
	if strings.Join(codes, " ") != "en=English es=Español fr=Français" {
		t.Errorf("languages %v", codes)
	}
	if got := cat.T("fr", "join.dob.submit"); got != "Continuer" {
		t.Errorf("fr text %q", got)
	}
	if got := cat.T("fr", "join.dob.day"); got != "Day" {
		t.Errorf("a key fr lacks: %q, want the English", got)
	}
}

func get(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", path, rec.Code)
	}
	return rec.Body.String()
}
