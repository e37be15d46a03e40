package sso

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/store"
)

// Limits of what an ID token's claims may hold here.
const (
	maxGroups     = 500
	maxClaimValue = 512
	maxAMR        = 20
)

// Claims are what a sign-in reads from a verified ID token.
type Claims struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	AMR           []string
	ACR           string
}

var errClaims = errors.New("claims malformed")

// claimsFrom reads the claims this package uses from a verified ID token's
// claim set. Identity providers disagree on shapes, so a groups (or amr)
// claim may be one string or a list of strings, and email_verified a
// boolean or the string "true"; anything else, or a value over its limit,
// is refused.
func claimsFrom(m map[string]json.RawMessage, groupsClaim string) (Claims, error) {
	var c Claims
	var err error
	if c.Email, err = str(m["email"]); err != nil {
		return Claims{}, err
	}
	if c.Name, err = str(m["name"]); err != nil {
		return Claims{}, err
	}
	if c.ACR, err = str(m["acr"]); err != nil {
		return Claims{}, err
	}
	if c.Groups, err = strs(m[groupsClaim], maxGroups); err != nil {
		return Claims{}, err
	}
	if c.AMR, err = strs(m["amr"], maxAMR); err != nil {
		return Claims{}, err
	}
	c.EmailVerified = verified(m["email_verified"])
	return c, nil
}

func str(raw json.RawMessage) (string, error) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil || len(s) > maxClaimValue {
		return "", errClaims
	}
	return s, nil
}

func strs(raw json.RawMessage, limit int) ([]string, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		one, err := str(raw)
		if err != nil {
			return nil, err
		}
		list = []string{one}
	}
	if len(list) > limit {
		return nil, errClaims
	}
	for _, s := range list {
		if len(s) > maxClaimValue {
			return nil, errClaims
		}
	}
	return list, nil
}

func verified(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == "true"
}

// RoleFor maps groups to a staff role by cfg: admin when any group is an
// admin group, provider when any is a provider group, "" when none is
// mapped (the person may not sign in).
func RoleFor(cfg config.OIDCIssuer, groups []string) string {
	in := func(mapped []string) bool {
		return slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(mapped, g) })
	}
	switch {
	case in(cfg.AdminGroups):
		return store.RoleAdmin
	case in(cfg.ProviderGroups):
		return store.RoleProvider
	}
	return ""
}

// MFAAsserted reports whether the token says the issuer did multi-factor
// authentication: an amr value or the acr among cfg.MFAValues.
func MFAAsserted(cfg config.OIDCIssuer, c Claims) bool {
	if c.ACR != "" && slices.Contains(cfg.MFAValues, c.ACR) {
		return true
	}
	return slices.ContainsFunc(c.AMR, func(v string) bool { return slices.Contains(cfg.MFAValues, v) })
}
