package config

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// OIDC configures sign-in through the clinic's identity providers (OpenID
// Connect, internal/sso) and whether local passwords stay on.
type OIDC struct {
	// Issuers are the clinic's identity providers; each gets a "Sign in
	// with <name>" button. In the environment: OPENVISIT_OIDC_ISSUERS as a
	// JSON list of the same objects.
	Issuers []OIDCIssuer `yaml:"issuers"`
	// LocalPasswords is "everyone" (the default) or "break_glass": then only
	// the admins listed in BreakGlassAdmins may sign in with a password (and
	// TOTP); everyone else signs in through an issuer.
	LocalPasswords string `yaml:"local_passwords"`
	// BreakGlassAdmins are the addresses of the admins who keep a password
	// when LocalPasswords is "break_glass".
	BreakGlassAdmins []string `yaml:"break_glass_admins"`
	// SweepInterval is how often every linked account's refresh token is
	// used to ask its issuer whether it still vouches for the person; a
	// refusal disables the account.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// Values of oidc.local_passwords.
const (
	LocalPasswordsEveryone   = "everyone"
	LocalPasswordsBreakGlass = "break_glass"
)

// OIDCIssuer is one identity provider.
type OIDCIssuer struct {
	// ID names the issuer in URLs and audit entries: 1–32 of a-z 0-9 -.
	ID string `yaml:"id" json:"id"`
	// Name completes the button "Sign in with <name>".
	Name string `yaml:"name" json:"name"`
	// URL is the issuer (https), as its discovery document states it.
	URL          string `yaml:"url" json:"url"`
	ClientID     string `yaml:"client_id" json:"client_id"`
	ClientSecret string `yaml:"client_secret" json:"client_secret" secret:"true"`
	// CAFile (PEM) replaces the system roots for the issuer's certificate.
	CAFile string `yaml:"ca_file" json:"ca_file"`
	// Scopes requested besides openid and offline_access (always asked).
	Scopes []string `yaml:"scopes" json:"scopes"`
	// GroupsClaim is the ID token claim that lists the person's groups.
	GroupsClaim string `yaml:"groups_claim" json:"groups_claim"`
	// ProviderGroups and AdminGroups map groups to the two staff roles
	// (admin wins). Only a person in a mapped group may sign in, and only
	// they are created on first sign-in.
	ProviderGroups []string `yaml:"provider_groups" json:"provider_groups"`
	AdminGroups    []string `yaml:"admin_groups" json:"admin_groups"`
	// MFAValues are the amr (or acr) values that mean the issuer did
	// multi-factor authentication; otherwise the local TOTP is asked too.
	MFAValues []string `yaml:"mfa_values" json:"mfa_values"`
}

// DefaultMFAValues are the amr values that count as multi-factor.
var DefaultMFAValues = []string{"mfa", "hwk", "otp"}

var issuerID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// withDefaults fills an issuer's unset optional fields.
func (i OIDCIssuer) withDefaults() OIDCIssuer {
	if i.GroupsClaim == "" {
		i.GroupsClaim = "groups"
	}
	if len(i.Scopes) == 0 {
		i.Scopes = []string{"profile", "email", "groups"}
	}
	if len(i.MFAValues) == 0 {
		i.MFAValues = slices.Clone(DefaultMFAValues)
	}
	return i
}

// OIDCIssuers returns the configured issuers with defaults applied.
func (c Config) OIDCIssuers() []OIDCIssuer { return c.OIDC.IssuersWithDefaults() }

// IssuersWithDefaults returns the issuers with defaults applied.
func (o OIDC) IssuersWithDefaults() []OIDCIssuer {
	out := make([]OIDCIssuer, len(o.Issuers))
	for i, is := range o.Issuers {
		out[i] = is.withDefaults()
	}
	return out
}

func (c Config) validateOIDC() []error {
	var p problems
	o := c.OIDC
	switch o.LocalPasswords {
	case LocalPasswordsEveryone, LocalPasswordsBreakGlass:
	default:
		p.add("oidc.local_passwords: %q or %q", LocalPasswordsEveryone, LocalPasswordsBreakGlass)
	}
	if o.LocalPasswords == LocalPasswordsBreakGlass && (len(o.BreakGlassAdmins) == 0 || len(o.Issuers) == 0) {
		p.add("oidc.local_passwords: break_glass needs at least one issuer and one oidc.break_glass_admins address")
	}
	if o.SweepInterval < time.Minute || o.SweepInterval > time.Hour {
		p.add("oidc.sweep_interval: between 1m and 1h (deprovisioning must reach the platform within the hour)")
	}
	seen := map[string]bool{}
	for n, is := range o.Issuers {
		for _, err := range is.validate() {
			p.add("oidc.issuers[%d]: %v", n, err)
		}
		if seen[is.ID] {
			p.add("oidc.issuers[%d]: id %q twice", n, is.ID)
		}
		seen[is.ID] = true
	}
	return p
}

func (i OIDCIssuer) validate() []error {
	var errs []error
	bad := func(s string) { errs = append(errs, errors.New(s)) }
	if !issuerID.MatchString(i.ID) {
		bad("id: 1–32 of a-z, 0-9 and -")
	}
	if i.Name == "" || !utf8.ValidString(i.Name) || utf8.RuneCountInString(i.Name) > 60 || strings.ContainsFunc(i.Name, unicode.IsControl) {
		bad("name: 1–60 characters of plain text")
	}
	u, err := url.Parse(i.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("url: the issuer's https URL")
	}
	if i.ClientID == "" || i.ClientSecret == "" {
		bad("client_id and client_secret: required")
	}
	if len(i.ProviderGroups)+len(i.AdminGroups) == 0 {
		bad("provider_groups or admin_groups: map at least one group to a role")
	}
	if len(i.ProviderGroups)+len(i.AdminGroups)+len(i.Scopes)+len(i.MFAValues) > 100 {
		bad("too many groups, scopes or mfa values (100 at most)")
	}
	return errs
}

// redactOIDC hides the issuers' client secrets.
func redactOIDC(o OIDC) OIDC {
	o.BreakGlassAdmins = slices.Clone(o.BreakGlassAdmins)
	o.Issuers = slices.Clone(o.Issuers)
	for n := range o.Issuers {
		if o.Issuers[n].ClientSecret != "" {
			o.Issuers[n].ClientSecret = "REDACTED"
		}
	}
	return o
}
