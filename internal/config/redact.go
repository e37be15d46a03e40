package config

import (
	"net/url"
	"slices"
)

// Redacted returns a copy with secrets replaced, safe to log.
func (c Config) Redacted() Config {
	r := c
	r.Roles = slices.Clone(c.Roles)
	r.SFU.PublicIPs = slices.Clone(c.SFU.PublicIPs)
	r.Cluster.AllowedOrigins = slices.Clone(c.Cluster.AllowedOrigins)
	r.Cluster.MediaConnectSrc = slices.Clone(c.Cluster.MediaConnectSrc)
	r.HTTP.TrustedProxies = slices.Clone(c.HTTP.TrustedProxies)
	r.OIDC = redactOIDC(c.OIDC)
	if r.Database.URL != "" {
		r.Database.URL = redactURL(r.Database.URL)
	}
	if r.S3.SecretKey != "" {
		r.S3.SecretKey = "REDACTED"
	}
	if r.SMTP.Password != "" {
		r.SMTP.Password = "REDACTED"
	}
	return r
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "REDACTED"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
