package config

import (
	"strings"
	"testing"
	"time"
)

const issuersJSON = `[{"id":"clinic","name":"the clinic's account","url":"https://idp.clinic.test","client_id":"ov",
"client_secret":"s3cret-value","provider_groups":["doctors"],"admin_groups":["it"]}]`

func TestOIDCIssuersFromEnv(t *testing.T) {
	c, err := Load("", []string{"OPENVISIT_OIDC_ISSUERS=" + issuersJSON, "OPENVISIT_OIDC_SWEEP_INTERVAL=30m"})
	if err != nil {
		t.Fatal(err)
	}
	is := c.OIDCIssuers()
	if len(is) != 1 || is[0].ID != "clinic" || is[0].AdminGroups[0] != "it" || c.OIDC.SweepInterval != 30*time.Minute {
		t.Fatalf("issuers = %+v", is)
	}
	if is[0].GroupsClaim != "groups" || strings.Join(is[0].MFAValues, ",") != "mfa,hwk,otp" {
		t.Errorf("defaults not applied: %+v", is[0])
	}
	if r := c.Redacted(); r.OIDC.Issuers[0].ClientSecret != "REDACTED" || c.OIDC.Issuers[0].ClientSecret != "s3cret-value" {
		t.Errorf("redaction: redacted %q, original %q", r.OIDC.Issuers[0].ClientSecret, c.OIDC.Issuers[0].ClientSecret)
	}
}

func TestOIDCIssuersEnvRefusesUnknownKeysWithoutEchoingTheSecret(t *testing.T) {
	_, err := Load("", []string{`OPENVISIT_OIDC_ISSUERS=[{"id":"x","client_secret":"s3cret-value","bogus":1}]`})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

func TestOIDCValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*OIDC)
		want   string
	}{
		"http issuer":          {func(o *OIDC) { o.Issuers[0].URL = "http://idp.test" }, "url"},
		"no mapping":           {func(o *OIDC) { o.Issuers[0].ProviderGroups, o.Issuers[0].AdminGroups = nil, nil }, "map at least one group"},
		"bad id":               {func(o *OIDC) { o.Issuers[0].ID = "Clinic/1" }, "id:"},
		"duplicate":            {func(o *OIDC) { o.Issuers = append(o.Issuers, o.Issuers[0]) }, "twice"},
		"no secret":            {func(o *OIDC) { o.Issuers[0].ClientSecret = "" }, "client_secret"},
		"break glass, no list": {func(o *OIDC) { o.LocalPasswords = LocalPasswordsBreakGlass }, "break_glass_admins"},
		"unknown mode":         {func(o *OIDC) { o.LocalPasswords = "none" }, "local_passwords"},
		"sweep too slow":       {func(o *OIDC) { o.SweepInterval = 2 * time.Hour }, "sweep_interval"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load("", []string{"OPENVISIT_OIDC_ISSUERS=" + issuersJSON})
			if err != nil {
				t.Fatal(err)
			}
			if errs := c.validateOIDC(); len(errs) != 0 {
				t.Fatalf("valid config refused: %v", errs)
			}
			tc.mutate(&c.OIDC)
			errs := c.validateOIDC()
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errs = %v, want one about %q", errs, tc.want)
			}
		})
	}
}
