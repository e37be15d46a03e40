package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"unicode"
)

// maxPlaintextReason bounds allow_plaintext_transport: it is logged at
// every start.
const maxPlaintextReason = 200

// The advice every transport error ends with, so that an operator reads
// what to change in the message itself.
const (
	dbTLSAdvice = "set sslmode=verify-full in database.url (OPENVISIT_DATABASE_URL), or verify-ca where the " +
		"server's certificate cannot name the host you connect to, with sslrootcert=/path/ca.pem for a private CA; " +
		"or set allow_plaintext_transport (OPENVISIT_ALLOW_PLAINTEXT_TRANSPORT) to the reason another layer encrypts the link"
	s3TLSAdvice = "set s3.use_tls: true (OPENVISIT_S3_USE_TLS=true), with s3.ca_file for a private CA; " +
		"or set allow_plaintext_transport (OPENVISIT_ALLOW_PLAINTEXT_TRANSPORT) to the reason another layer encrypts the link"
)

// ValidateTransport checks that the links to PostgreSQL and to object
// storage are encrypted and the server verified wherever that is required:
// always in production, and for PostgreSQL wherever database.require_tls is
// set — unless allow_plaintext_transport gives the reason another layer
// encrypts them. Validate calls it; the operator commands that connect
// without a full Validate (migrate, user, keys, audit) call it directly, so
// that every path to the database and the bucket passes this one rule.
func (c Config) ValidateTransport() error {
	var errs []error
	reason := c.AllowPlaintextTransport
	if reason != "" {
		if err := checkReason(reason); err != nil {
			errs = append(errs, err)
		}
	}
	if c.S3.CAFile != "" && !c.S3.UseTLS {
		errs = append(errs, errors.New("s3.ca_file: set s3.use_tls: true as well (a CA means nothing over plain HTTP)"))
	}
	if reason != "" {
		return errors.Join(errs...)
	}
	if c.Database.URL != "" && (c.Environment == Production || c.Database.RequireTLS) {
		if problem := dbTLSProblem(c.Database.URL); problem != "" {
			why := "production requires a verified TLS connection to PostgreSQL"
			if c.Environment != Production {
				why = "database.require_tls requires a verified TLS connection"
			}
			errs = append(errs, fmt.Errorf("database.url: the server is not verified (%s); %s: %s", problem, why, dbTLSAdvice))
		}
	}
	if c.S3.Endpoint != "" && c.Environment == Production && !c.S3.UseTLS {
		errs = append(errs, fmt.Errorf("s3.use_tls: production requires TLS to object storage (s3.endpoint is set, s3.use_tls is false): %s", s3TLSAdvice))
	}
	return errors.Join(errs...)
}

// checkReason accepts a short, printable, non-blank reason.
func checkReason(r string) error {
	switch {
	case strings.TrimSpace(r) == "":
		return errors.New("allow_plaintext_transport: give the reason plaintext is acceptable (e.g. \"sidecar encrypts: istio mTLS\"), not blanks")
	case len(r) > maxPlaintextReason:
		return fmt.Errorf("allow_plaintext_transport: at most %d characters", maxPlaintextReason)
	case strings.IndexFunc(r, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		return errors.New("allow_plaintext_transport: printable characters only")
	}
	return nil
}

// dbTLSProblem names, in a few words, why a postgres:// URL does not make
// the driver verify the server ("" when it does). Only the sslmode is
// named: the URL may hold a password.
func dbTLSProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "not a URL" // Validate reports the URL itself
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "malformed query string"
	}
	if q.Has("ssl") {
		return "ssl= instead of sslmode=" // pgx reads ssl=true as sslmode=require
	}
	modes := q["sslmode"]
	switch {
	case len(modes) == 0:
		// The driver's default, prefer, tries TLS without verifying the
		// server and falls back to plaintext.
		return "no sslmode: the default, prefer, verifies nothing and falls back to plaintext"
	case len(modes) > 1:
		return "sslmode given more than once"
	}
	switch m := modes[0]; m {
	case "verify-full", "verify-ca":
		return ""
	case "disable", "allow", "prefer", "require":
		return "sslmode=" + m
	default:
		return "unknown sslmode"
	}
}

// PlaintextLinks names the configured links that do not use verified TLS,
// for the start-up log: "database: sslmode=disable", "s3: use_tls=false".
func (c Config) PlaintextLinks() []string {
	var links []string
	if c.Database.URL != "" {
		if p := dbTLSProblem(c.Database.URL); p != "" {
			links = append(links, "database: "+p)
		}
	}
	if c.S3.Endpoint != "" && !c.S3.UseTLS {
		links = append(links, "s3: use_tls=false")
	}
	return links
}

// LogTransport logs, at every start, that allow_plaintext_transport is set
// (a warning, with its reason and the links it lets through), or which links
// run without verified TLS in development.
func (c Config) LogTransport(log *slog.Logger) {
	links := c.PlaintextLinks()
	switch {
	case c.AllowPlaintextTransport != "":
		log.Warn("allow_plaintext_transport is set: links to PostgreSQL and S3 may run without verified TLS",
			"reason", c.AllowPlaintextTransport, "plaintext_links", links)
	case len(links) > 0:
		log.Info("development: links without verified TLS (refused in production)", "plaintext_links", links)
	}
}
