package config

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validProduction is a production configuration that passes Validate:
// verified TLS to PostgreSQL and S3.
func validProduction() Config {
	c := Default()
	c.TLS = TLS{CertFile: "c", KeyFile: "k"}
	c.Token.SigningKeyFile = "k"
	c.Auth.SecretKeyFile = "s"
	c.Audit.CheckpointKeyFile = "a"
	c.Database.URL = "postgres://app:hunter2hunter2@db.clinic.internal:5432/openvisit?sslmode=verify-full&sslrootcert=/ca.pem"
	c.S3.Endpoint = "s3.clinic.internal:9000"
	c.S3.UseTLS = true
	return c
}

const dbBase = "postgres://app:hunter2hunter2@db.clinic.internal:5432/openvisit"

// TestProductionRequiresTLS: in production every link to PostgreSQL or S3
// that would not verify the server is refused, with a message that names
// the setting to change; allow_plaintext_transport with a reason lets the
// process start (and LogTransport warns about it); development still
// allows plaintext.
func TestProductionRequiresTLS(t *testing.T) {
	if err := validProduction().Validate(); err != nil {
		t.Fatalf("the verified production config is refused: %v", err)
	}
	plaintext := []plaintextLink{
		{"sslmode=disable", dbURL("?sslmode=disable"), []string{"database.url", "sslmode=disable", "verify-full", "allow_plaintext_transport"}},
		{"sslmode=prefer", dbURL("?sslmode=prefer"), []string{"database.url", "sslmode=prefer", "verify-full"}},
		{"sslmode=require", dbURL("?sslmode=require&sslrootcert=/ca.pem"), []string{"database.url", "sslmode=require", "verify-full"}},
		{"sslmode=allow", dbURL("?sslmode=allow"), []string{"database.url", "sslmode=allow", "verify-full"}},
		{"no sslmode", dbURL(""), []string{"database.url", "no sslmode", "OPENVISIT_DATABASE_URL"}},
		{"no sslmode, other params", dbURL("?sslrootcert=/ca.pem&application_name=ov"), []string{"database.url", "no sslmode"}},
		{"ssl=true alias", dbURL("?ssl=true"), []string{"database.url", "ssl="}},
		{"sslmode twice", dbURL("?sslmode=verify-full&sslmode=disable"), []string{"database.url", "more than once"}},
		{"unknown sslmode", dbURL("?sslmode=verify-fully"), []string{"database.url", "unknown sslmode"}},
		{"s3 without tls", func(c *Config) { c.S3.UseTLS = false }, []string{"s3.use_tls", "OPENVISIT_S3_USE_TLS=true", "allow_plaintext_transport"}},
		{"both", func(c *Config) { c.S3.UseTLS = false; dbURL("?sslmode=disable")(c) }, []string{"s3.use_tls", "database.url"}},
	}
	for _, tt := range plaintext {
		checkPlaintextLink(t, tt)
	}

	t.Run("verify-ca accepted", func(t *testing.T) {
		c := validProduction()
		dbURL("?sslmode=verify-ca&sslrootcert=/ca.pem")(&c)
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if rec := logTransport(t, c); rec != nil {
			t.Errorf("a verified config logged %v", rec)
		}
	})
	t.Run("no s3 endpoint, no s3 rule", func(t *testing.T) {
		c := validProduction()
		c.Roles = []string{RoleMedia}
		c.S3 = S3{}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("require_tls in development", func(t *testing.T) {
		c := validProduction()
		c.Environment = Development
		c.Database.RequireTLS = true
		dbURL("?sslmode=disable")(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "require_tls") {
			t.Fatalf("Validate() = %v, want database.require_tls honoured", err)
		}
	})
	badPlaintextReasonsRefused(t)
	t.Run("ca_file without use_tls", func(t *testing.T) {
		c := validProduction()
		c.Environment = Development
		c.S3.UseTLS = false
		c.S3.CAFile = "/ca.pem"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "s3.ca_file") {
			t.Fatalf("Validate() = %v, want s3.ca_file refused without use_tls", err)
		}
	})
}

// plaintextLink is a production setting (mutate) that leaves a link to
// PostgreSQL or S3 unverified.
type plaintextLink struct {
	name   string
	mutate func(*Config)
	want   []string // every one must be in the error
}

// checkPlaintextLink: tt is refused in production with an error naming
// each of tt.want and not the password, allowed with a reason (and logged
// as a warning), and allowed in development.
func checkPlaintextLink(t *testing.T, tt plaintextLink) {
	t.Helper()
	t.Run("refused/"+tt.name, func(t *testing.T) {
		c := validProduction()
		tt.mutate(&c)
		err := c.Validate()
		if err == nil {
			t.Fatal("production accepted a link without verified TLS")
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not mention %q:\n%v", w, err)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error echoes the database password: %v", err)
		}
		if tc := c; tc.ValidateTransport() == nil {
			t.Error("ValidateTransport (the operator commands' check) accepted it")
		}
	})
	t.Run("allowed with reason/"+tt.name, func(t *testing.T) {
		c := validProduction()
		tt.mutate(&c)
		c.AllowPlaintextTransport = "sidecar encrypts: istio mTLS"
		if err := c.Validate(); err != nil {
			t.Fatalf("refused despite allow_plaintext_transport: %v", err)
		}
		rec := logTransport(t, c)
		if rec["level"] != "WARN" || rec["reason"] != "sidecar encrypts: istio mTLS" {
			t.Errorf("start-up log = %v, want a warning with the reason", rec)
		}
		if links, _ := rec["plaintext_links"].([]any); len(links) == 0 {
			t.Errorf("start-up log = %v, want the plaintext links named", rec)
		}
	})
	t.Run("development/"+tt.name, func(t *testing.T) {
		c := validProduction()
		c.Environment = Development
		tt.mutate(&c)
		if err := c.Validate(); err != nil {
			t.Fatalf("development refused plaintext: %v", err)
		}
	})
}

// badPlaintextReasonsRefused: allow_plaintext_transport's reason must be
// one short line of text.
func badPlaintextReasonsRefused(t *testing.T) {
	t.Helper()
	for _, reason := range []string{" ", "\t\n", strings.Repeat("x", maxPlaintextReason+1), "istio\nmTLS"} {
		t.Run("bad reason "+strings.TrimSpace(reason[:min(len(reason), 8)]), func(t *testing.T) {
			c := validProduction()
			c.S3.UseTLS = false
			c.AllowPlaintextTransport = reason
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), "allow_plaintext_transport:") {
				t.Fatalf("Validate() = %v, want the reason refused", err)
			}
		})
	}
}

func dbURL(query string) func(*Config) {
	return func(c *Config) { c.Database.URL = dbBase + query }
}

// logTransport runs LogTransport into a JSON handler and returns the one
// record it wrote (nil for none).
func logTransport(t *testing.T, c Config) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	c.LogTransport(slog.New(slog.NewJSONHandler(&buf, nil)))
	if buf.Len() == 0 {
		return nil
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log is not one JSON record: %v\n%s", err, buf.String())
	}
	return rec
}

func TestTransportSettingsLoad(t *testing.T) {
	c, err := Load("", []string{
		"OPENVISIT_ALLOW_PLAINTEXT_TRANSPORT=sidecar encrypts: istio mTLS",
		"OPENVISIT_S3_CA_FILE=/etc/openvisit/s3-ca.pem",
		"OPENVISIT_S3_USE_TLS=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.AllowPlaintextTransport = "sidecar encrypts: istio mTLS"
	want.S3.CAFile = "/etc/openvisit/s3-ca.pem"
	want.S3.UseTLS = true
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", d)
	}
	// The effective-config dump shows the reason.
	if r := c.Redacted(); r.AllowPlaintextTransport != want.AllowPlaintextTransport {
		t.Errorf("Redacted dropped allow_plaintext_transport: %q", r.AllowPlaintextTransport)
	}
}
