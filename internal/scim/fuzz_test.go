package scim

import (
	"encoding/json"
	"testing"

	"github.com/elimity-com/scim"
	"github.com/scim2/filter-parser/v2"
)

// FuzzNormalizePatch: any body is either returned unchanged or rewritten
// into valid JSON, and a rewrite only turns string booleans into booleans.
func FuzzNormalizePatch(f *testing.F) {
	f.Add([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`))
	f.Add([]byte(`{"Operations":[{"op":"replace","value":{"active":"True","displayName":"x"}}]}`))
	f.Add([]byte(`{"Operations":"x"}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out := NormalizePatch(body)
		if string(out) == string(body) {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("rewrite is not JSON: %q", out)
		}
		if NormalizePatch(out) == nil || string(NormalizePatch(out)) != string(out) {
			t.Fatalf("rewrite is not stable: %q", out)
		}
	})
}

// FuzzApplyOps: the PATCH operations an identity provider sends (any path
// the filter parser accepts, any JSON value) never panic, and a boolean
// sent to active is what the account becomes.
func FuzzApplyOps(f *testing.F) {
	f.Add("replace", "active", []byte(`false`))
	f.Add("add", "name.givenName", []byte(`"Dana"`))
	f.Add("remove", "externalId", []byte(`null`))
	f.Add("replace", `emails[type eq "work"].value`, []byte(`"a@b.c"`))
	f.Add("replace", "", []byte(`{"active":false,"userName":"x@y.z"}`))
	f.Fuzz(func(t *testing.T, op, path string, value []byte) {
		var v any
		if json.Unmarshal(value, &v) != nil {
			return
		}
		o := scim.PatchOperation{Op: op, Value: v}
		if path != "" {
			p, err := filter.ParsePath([]byte(path))
			if err != nil {
				return
			}
			o.Path = &p
		}
		cur := state{email: "a@clinic.test", name: "A", active: true}
		next, err := applyOps(cur, []scim.PatchOperation{o})
		if b, isBool := v.(bool); err == nil && isBool && path == "active" && op != "remove" && next.active != b {
			t.Fatalf("replace active %v left active %v", b, next.active)
		}
	})
}
