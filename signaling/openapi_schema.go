package signaling

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// schemas turns Go types into JSON Schema (OpenAPI 3.1, JSON Schema
// 2020-12) by reflection, so that the published description of a view is
// the view struct itself and cannot drift from it. It follows
// encoding/json as the handlers use it (gin's c.JSON): a field's name is
// its json tag, a field without omitempty is always written (required),
// a nil slice, map or pointer is written as null.
//
// Exported named structs become components ($ref); unexported and
// anonymous ones (the request types, the gin.H wrappers) are inlined.
type schemas struct {
	components openapi3.Schemas
	// request: a schema for a body the server decodes (strictly: unknown
	// members are refused, absent ones are zero), so nothing is required.
	request bool
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func typed(t ...string) *openapi3.Types { ts := openapi3.Types(t); return &ts }

// of returns the schema of values like v (a prototype: only its type
// matters).
func (g *schemas) of(v any) *openapi3.SchemaRef {
	if v == nil {
		return openapi3.NewSchemaRef("", &openapi3.Schema{})
	}
	return g.typeSchema(reflect.TypeOf(v))
}

func (g *schemas) typeSchema(t reflect.Type) *openapi3.SchemaRef {
	inline := func(s *openapi3.Schema) *openapi3.SchemaRef { return openapi3.NewSchemaRef("", s) }
	switch {
	case t == timeType:
		return inline(&openapi3.Schema{Type: typed("string"), Format: "date-time"})
	case t == rawType:
		return inline(&openapi3.Schema{}) // any JSON value
	case t.Kind() != reflect.Pointer && t.Implements(jsonMarshaler):
		return inline(&openapi3.Schema{}) // its own encoding: any JSON value
	case t.Kind() != reflect.Pointer && t.Implements(textMarshaler):
		return inline(&openapi3.Schema{Type: typed("string")})
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(g.typeSchema(t.Elem()))
	case reflect.Bool:
		return inline(&openapi3.Schema{Type: typed("boolean")})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return inline(&openapi3.Schema{Type: typed("integer")})
	case reflect.Float32, reflect.Float64:
		return inline(&openapi3.Schema{Type: typed("number")})
	case reflect.String:
		return inline(&openapi3.Schema{Type: typed("string")})
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return inline(&openapi3.Schema{Type: typed("string", "null"), Format: "byte"})
		}
		return inline(&openapi3.Schema{Type: typed("array", "null"), Items: g.typeSchema(t.Elem())})
	case reflect.Array:
		return inline(&openapi3.Schema{Type: typed("array"), Items: g.typeSchema(t.Elem())})
	case reflect.Map:
		return inline(&openapi3.Schema{Type: typed("object", "null"),
			AdditionalProperties: openapi3.AdditionalProperties{Schema: g.typeSchema(t.Elem())}})
	case reflect.Struct:
		return g.structSchema(t)
	}
	return inline(&openapi3.Schema{}) // interface values: any JSON value
}

// nullable lets a schema also be null (a nil pointer).
func nullable(r *openapi3.SchemaRef) *openapi3.SchemaRef {
	if r.Ref == "" && r.Value.Type != nil && len(r.Value.AnyOf) == 0 {
		if r.Value.Type.Includes("null") {
			return r
		}
		cp := *r.Value
		ts := append(openapi3.Types{}, *cp.Type...)
		cp.Type = typed(append(ts, "null")...)
		return openapi3.NewSchemaRef("", &cp)
	}
	if r.Ref == "" && r.Value.Type == nil && len(r.Value.AnyOf) == 0 && len(r.Value.Properties) == 0 {
		return r // any value already admits null
	}
	null := openapi3.NewSchemaRef("", &openapi3.Schema{Type: typed("null")})
	return openapi3.NewSchemaRef("", &openapi3.Schema{AnyOf: openapi3.SchemaRefs{r, null}})
}

// componentName names an exported struct's component: bare for this
// package's views, qualified by package for the others.
func componentName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	if pkg == "signaling" {
		return t.Name()
	}
	return pkg + "." + t.Name()
}

func (g *schemas) structSchema(t reflect.Type) *openapi3.SchemaRef {
	if g.request || t.Name() == "" || !isExported(t.Name()) {
		return openapi3.NewSchemaRef("", g.object(t))
	}
	name := componentName(t)
	ref := "#/components/schemas/" + name
	if s, ok := g.components[name]; ok {
		return openapi3.NewSchemaRef(ref, s.Value)
	}
	s := &openapi3.Schema{}
	g.components[name] = openapi3.NewSchemaRef("", s) // placed first: a type may refer to itself
	*s = *g.object(t)
	return openapi3.NewSchemaRef(ref, s)
}

func isExported(name string) bool { return name != "" && strings.ToUpper(name[:1]) == name[:1] }

// object is a struct's schema: its JSON members, closed to others.
func (g *schemas) object(t reflect.Type) *openapi3.Schema {
	s := &openapi3.Schema{Type: typed("object"), Properties: openapi3.Schemas{},
		AdditionalProperties: openapi3.AdditionalProperties{Has: new(false)}}
	g.addFields(s, t)
	return s
}

func (g *schemas) addFields(s *openapi3.Schema, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.addFields(s, ft) // embedded: its fields are promoted
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s.Properties[name] = g.typeSchema(f.Type)
		if !g.request && !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			s.Required = append(s.Required, name)
		}
	}
}

// fields is the schema of a gin.H answer: each member's prototype value,
// all of them always present.
func (g *schemas) fields(members map[string]any) *openapi3.SchemaRef {
	s := &openapi3.Schema{Type: typed("object"), Properties: openapi3.Schemas{},
		AdditionalProperties: openapi3.AdditionalProperties{Has: new(false)}}
	for name, v := range members {
		s.Properties[name] = g.of(v)
		s.Required = append(s.Required, name)
	}
	sortStrings(s.Required)
	return openapi3.NewSchemaRef("", s)
}
