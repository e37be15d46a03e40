package signaling

import (
	stdjson "encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/openvisit/openvisit/internal/httpx"
)

// FuzzDecodeJSON feeds arbitrary bodies to the strict decoder, decoding
// into each request type the API serves (requestBodies). Whatever the
// bytes, the decoder refuses with a 400-class input error or accepts; what
// it accepts holds only storable text (valid UTF-8, no NUL) and means
// exactly what encoding/json reads from it, so its strictness refuses and
// never reinterprets.
func FuzzDecodeJSON(f *testing.F) {
	bodies := requestBodies()
	routes := make([]string, 0, len(bodies))
	for k := range bodies {
		routes = append(routes, k)
	}
	slices.Sort(routes)
	seeds := []string{
		`{"email":"a@clinic.test","password":"correct horse","code":"123 456"}`,
		`{"invite":"abc","date_of_birth":"1990-01-31"}`,
		`{"patient_id":"","start":"2026-03-01T09:30:00-05:00","duration_minutes":30,"reason":"check-up"}`,
		`{"accept":true}`, `{"hold":null}`, `{"email":true}`, `{}`, ` {} `, `null`,
		`{"email":"a\u0000b"}`, `{"em\u0000ail":"a"}`, "{\"email\":\"\xff\"}", `{"email":"\ud800"}`,
		`{"email":"a","email":"b"}`, `{"Email":"a"}`, `{"EMAIL":"a","email":"b"}`,
		`{"email":"a"} {}`, `{"email":"a"}x`, `[`, `{"email":`, `"text"`, `{"duration_minutes":1e3}`,
		`{"reason":"` + strings.Repeat("é", 50) + `"}`, `{"a":{"b":[1,2,{"c":null}]}}`,
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		route := routes[int(which)%len(routes)]
		v := bodies[route]()
		err := httpx.DecodeJSONBytes(body, v)
		if err != nil {
			var e *httpx.Error
			if !errors.As(err, &e) || !errors.Is(err, httpx.ErrBadInput) || httpx.Status(e.Kind) != 400 {
				t.Fatalf("%s: refusal %v is not a 400 input error", route, err)
			}
			if strings.Contains(e.Message, string(body)) && len(body) > 3 {
				t.Fatalf("%s: the message repeats the body", route)
			}
			return
		}
		storable(t, route, reflect.ValueOf(v).Elem())
		w := bodies[route]()
		if err := stdjson.Unmarshal(body, w); err != nil {
			t.Fatalf("%s: accepted %q, which encoding/json refuses: %v", route, body, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("%s: %q decoded as %+v, encoding/json reads %+v", route, body, v, w)
		}
	})
}

// storable fails t when a string in v could not be stored as PostgreSQL
// text.
func storable(t *testing.T, route string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("%s: accepted a string PostgreSQL cannot store: %q", route, s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			storable(t, route, v.Field(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			storable(t, route, v.Elem())
		}
	}
}

// No request type admits a member that differs from its own only in case
// (encoding/json would have matched it).
func TestRequestBodiesCaseSensitive(t *testing.T) {
	for route, newBody := range requestBodies() {
		v := reflect.ValueOf(newBody()).Elem()
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			body := `{"` + strings.ToUpper(name) + `":null}`
			if err := httpx.DecodeJSONBytes([]byte(body), newBody()); err == nil {
				t.Errorf("%s accepted %s", route, body)
			}
		}
	}
}
