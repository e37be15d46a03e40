package i18n_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/openvisit/openvisit/internal/i18n"
)

func load(t *testing.T, files map[string]string) (*i18n.Catalogue, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return i18n.Load(fsys)
}

func TestTFallsBackAndFills(t *testing.T) {
	c, err := load(t, map[string]string{
		"en.json": `{"lang.name": "English", "hi": "Hello {name}, {name}", "only.en": "English only"}`,
		"es.json": `{"lang.name": "Español", "hi": "Hola {name}"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ lang, key, want string }{
		{"es", "hi", "Hola Ana"},
		{"en", "hi", "Hello Ana, Ana"},
		{"es", "only.en", "English only"},
		{"xx", "hi", "Hello Ana, Ana"},
		{"es", "nowhere", "nowhere"},
	} {
		if got := c.T(tc.lang, tc.key, "name", "Ana"); got != tc.want {
			t.Errorf("T(%s, %s) = %q, want %q", tc.lang, tc.key, got, tc.want)
		}
	}
	if !c.Has("es") || c.Has("fr") {
		t.Error("Has")
	}
}

func TestLoadRefuses(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no English":       {"es.json": `{"lang.name": "Español"}`},
		"nested":           {"en.json": `{"lang.name": "English", "a": {"b": "c"}}`},
		"empty text":       {"en.json": `{"lang.name": "English", "a": " "}`},
		"unnamed language": {"en.json": `{"a": "b"}`},
		"bad file name":    {"en.json": `{"lang.name": "English"}`, "Spanish.json": `{"lang.name": "Español"}`},
		"not JSON":         {"en.json": `lang.name = English`},
	} {
		if _, err := load(t, files); err == nil {
			t.Errorf("%s: loaded, want an error", name)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	if got := strings.Join(i18n.Placeholders("{b} and {a}, {b} {Not} {}"), " "); got != "{a} {b}" {
		t.Errorf("Placeholders = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"lang.name": "English", "a": "b"}`))
	f.Add([]byte(`{"lang.name": ""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := i18n.Parse(data)
		if err == nil && m[i18n.NameKey] == "" {
			t.Fatal("parsed a catalogue without its language's name")
		}
	})
}
