package scim

import (
	"net/http"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/store"
)

// state is what SCIM can change of an account.
type state struct {
	email, name, externalID string
	active                  bool
}

func (s state) profile() accounts.Profile {
	return accounts.Profile{Email: s.email, Name: s.name, ExternalID: s.externalID}
}

func stateOf(u store.User) state {
	return state{email: u.Email, name: u.Name, externalID: u.ExternalID, active: u.DisabledAt == nil}
}

// resource is u as a SCIM User: userName is the sign-in address.
func resource(u store.User) scim.Resource {
	attrs := scim.ResourceAttributes{
		"userName":    u.Email,
		"displayName": u.Name,
		"name":        map[string]any{"formatted": u.Name},
		"active":      u.DisabledAt == nil,
		"emails":      []any{map[string]any{"value": u.Email, "primary": true, "type": "work"}},
	}
	r := scim.Resource{ID: string(u.ID), Attributes: attrs, Meta: scim.Meta{Created: &u.CreatedAt}}
	if u.ExternalID != "" {
		r.ExternalID = optional.NewString(u.ExternalID)
	}
	return r
}

// fromAttributes reads a full User (create, replace): what it leaves out
// takes def's value (active defaults to true, as SCIM says).
func fromAttributes(attrs scim.ResourceAttributes, def state) state {
	s := def
	if v, ok := attrs["userName"].(string); ok {
		s.email = v
	}
	if v, ok := attrs["externalId"].(string); ok {
		s.externalID = v
	}
	if v, ok := attrs["active"].(bool); ok {
		s.active = v
	}
	if n := nameOf(attrs); n != "" {
		s.name = n
	}
	return s
}

// nameOf is displayName, else name.formatted, else given and family name.
func nameOf(attrs map[string]any) string {
	if v, ok := attrs["displayName"].(string); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	n, _ := attrs["name"].(map[string]any)
	if v, ok := n["formatted"].(string); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	given, _ := n["givenName"].(string)
	family, _ := n["familyName"].(string)
	return strings.TrimSpace(strings.TrimSpace(given) + " " + strings.TrimSpace(family))
}

// applyOps applies PATCH operations to cur. Paths OpenVisit keeps —
// active, userName, displayName, name(.formatted/givenName/familyName),
// externalId — change it; operations on anything else (phone numbers,
// titles…) are accepted and ignored, as identity providers send whole
// profiles. Identity providers send active as a boolean or as the string
// "True"/"False" (Entra ID), and a value-only replace as an object.
func applyOps(cur state, ops []scim.PatchOperation) (state, error) {
	for _, op := range ops {
		if op.Path == nil {
			obj, ok := op.Value.(map[string]any)
			if !ok || op.Op == scim.PatchOperationRemove {
				return cur, errBadPatch
			}
			for k, v := range obj {
				var err error
				if cur, err = applyOne(cur, op.Op, k, "", v); err != nil {
					return cur, err
				}
			}
			continue
		}
		sub := ""
		if op.Path.AttributePath.SubAttribute != nil {
			sub = *op.Path.AttributePath.SubAttribute
		}
		var err error
		if cur, err = applyOne(cur, op.Op, op.Path.AttributePath.AttributeName, sub, op.Value); err != nil {
			return cur, err
		}
	}
	return cur, nil
}

var errBadPatch = scimerrors.ScimError{ScimType: scimerrors.ScimTypeInvalidValue, Status: http.StatusBadRequest,
	Detail: "A PATCH operation's value does not fit its path."}

func applyOne(cur state, op, attr, sub string, v any) (state, error) {
	if op == scim.PatchOperationRemove {
		switch strings.ToLower(attr) {
		case "externalid":
			cur.externalID = ""
		case "username", "active":
			return cur, errBadPatch // required: cannot be removed
		}
		return cur, nil
	}
	str, isStr := v.(string)
	switch strings.ToLower(attr) {
	case "active":
		b, ok := boolOf(v)
		if !ok {
			return cur, errBadPatch
		}
		cur.active = b
	case "username":
		if !isStr {
			return cur, errBadPatch
		}
		cur.email = str
	case "externalid":
		if !isStr {
			return cur, errBadPatch
		}
		cur.externalID = str
	case "displayname":
		if !isStr {
			return cur, errBadPatch
		}
		cur.name = strings.TrimSpace(str)
	case "name":
		cur.name = patchName(cur.name, sub, v)
	}
	return cur, nil
}

// patchName applies a change of name or of one of its parts. Only the
// whole (formatted) name is kept, so a part replaces it when it is the
// only part sent.
func patchName(cur, sub string, v any) string {
	if sub != "" {
		v = map[string]any{sub: v}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return cur
	}
	if n := nameOf(map[string]any{"name": obj}); n != "" {
		return n
	}
	return cur
}

func boolOf(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch strings.ToLower(b) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}
