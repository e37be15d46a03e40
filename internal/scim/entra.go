package scim

import (
	"encoding/json"
	"strings"
)

// NormalizePatch rewrites the one non-standard value identity providers
// are known to send in a PATCH — `active` as the string "True"/"False"
// (Entra ID, with or without a path) — into the boolean the User schema
// requires, so that the library's schema validation accepts it. Any other
// body, or one that is not a JSON object with Operations, is returned
// unchanged for the library to judge.
func NormalizePatch(body []byte) []byte {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return body
	}
	ops, ok := doc["Operations"].([]any)
	if !ok {
		return body
	}
	changed := false
	for _, o := range ops {
		op, ok := o.(map[string]any)
		if !ok {
			continue
		}
		if path, _ := op["path"].(string); strings.EqualFold(path, "active") {
			if b, ok := stringBool(op["value"]); ok {
				op["value"], changed = b, true
			}
			continue
		}
		if v, ok := op["value"].(map[string]any); ok && op["path"] == nil {
			for k, x := range v {
				if b, ok := stringBool(x); ok && strings.EqualFold(k, "active") {
					v[k], changed = b, true
				}
			}
		}
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return out
}

// stringBool reads "true"/"false" in any case; a real boolean is not
// rewritten.
func stringBool(v any) (bool, bool) {
	s, ok := v.(string)
	if !ok {
		return false, false
	}
	return boolOf(s)
}
