package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "openvisit.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadLayers(t *testing.T) {
	path := writeFile(t, `
environment: development
listen_addr: "127.0.0.1:9443"
database:
  url: postgres://from-file/db
token:
  ttl: 90s
sfu:
  public_ips: [203.0.113.7]
`)
	c, err := Load(path, []string{
		"OPENVISIT_DATABASE_URL=postgres://from-env/db",
		"OPENVISIT_ROLES=api, media",
		"OPENVISIT_DEMO=true",
		"HOME=/ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Environment = Development
	want.ListenAddr = "127.0.0.1:9443"
	want.Database.URL = "postgres://from-env/db" // env wins over file
	want.Token.TTL = 90 * time.Second
	want.SFU.PublicIPs = []string{"203.0.113.7"}
	want.Roles = []string{"api", "media"}
	want.Demo = true
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", d)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadRejectsUnknown(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     []string
		wantErr string
	}{
		{"unknown yaml key", "databse:\n  url: x\n", nil, "databse"},
		{"unknown nested key", "database:\n  uri: x\n", nil, "uri"},
		{"unknown env var", "", []string{"OPENVISIT_DATABASE_URI=x"}, "OPENVISIT_DATABASE_URI"},
		{"bad bool", "", []string{"OPENVISIT_DEMO=sure"}, "OPENVISIT_DEMO"},
		{"bad duration", "", []string{"OPENVISIT_TOKEN_TTL=5"}, "OPENVISIT_TOKEN_TTL"},
		{"yaml type", "token:\n  ttl: [1]\n", nil, "time.Duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			_, err := Load(path, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want mention of %q", err, tt.wantErr)
			}
		})
	}
}

func TestEnvErrorDoesNotEchoValue(t *testing.T) {
	_, err := Load("", []string{"OPENVISIT_DATABASE_MAX_CONNS=s3cr3t-value"})
	if err == nil || strings.Contains(err.Error(), "s3cr3t-value") {
		t.Fatalf("error must name the variable, not its value: %v", err)
	}
}

func validDev() Config {
	c := Default()
	c.Environment = Development
	c.Database.URL = "postgres://localhost/openvisit"
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // empty: valid
	}{
		{"dev ok", func(c *Config) {}, ""},
		{"demo in dev ok", func(c *Config) { c.Demo = true }, ""},
		{"demo refused in production", func(c *Config) {
			c.Environment = Production
			c.Demo = true
			c.TLS = TLS{CertFile: "c", KeyFile: "k"}
			c.Token.SigningKeyFile = "k"
			c.Auth.SecretKeyFile = "s"
			c.Audit.CheckpointKeyFile = "a"
			c.S3.Endpoint = "s3.example:443"
		}, "demo"},
		{"production needs anchoring", func(c *Config) {
			c.Environment = Production
			c.TLS = TLS{CertFile: "c", KeyFile: "k"}
			c.Token.SigningKeyFile = "k"
			c.Auth.SecretKeyFile = "s"
		}, "s3.endpoint"},
		{"webhook over http in production", func(c *Config) {
			c.Environment = Production
			c.Alerts.WebhookURL = "http://hooks.example/alerts"
			c.Alerts.WebhookSecretFile = "w"
		}, "webhook_url"},
		{"production needs auth secret", func(c *Config) {
			c.Environment = Production
			c.TLS = TLS{CertFile: "c", KeyFile: "k"}
			c.Token.SigningKeyFile = "k"
		}, "auth.secret_key_file"},
		{"idle too long", func(c *Config) { c.Auth.Idle = 2 * time.Hour }, "idle"},
		{"head anchors too rare", func(c *Config) { c.Audit.HeadAnchorInterval = 10 * time.Second }, "head_anchor_interval"},
		{"head anchors off", func(c *Config) { c.Audit.HeadAnchorInterval = 0 }, "head_anchor_interval"},
		{"production needs tls files", func(c *Config) { c.Environment = Production; c.Token.SigningKeyFile = "k" }, "tls"},
		{"production needs signing key", func(c *Config) {
			c.Environment = Production
			c.TLS = TLS{CertFile: "c", KeyFile: "k"}
		}, "signing_key_file"},
		{"unknown role", func(c *Config) { c.Roles = []string{"api", "turn"} }, "unknown role"},
		{"no roles", func(c *Config) { c.Roles = nil }, "roles"},
		{"bad env name", func(c *Config) { c.Environment = "staging" }, "environment"},
		{"http public url", func(c *Config) { c.PublicURL = "http://localhost:8443" }, "public_url"},
		{"missing db", func(c *Config) { c.Database.URL = "" }, "database.url"},
		{"db tls required", func(c *Config) { c.Database.RequireTLS = true }, "require_tls"},
		{"db tls verified", func(c *Config) {
			c.Database.RequireTLS = true
			c.Database.URL = "postgres://db/openvisit?sslmode=verify-full"
		}, ""},
		{"ttl too long", func(c *Config) { c.Token.TTL = time.Hour }, "token.ttl"},
		{"bad public ip", func(c *Config) { c.SFU.PublicIPs = []string{"nope"} }, "public_ips"},
		{"bad udp addr", func(c *Config) { c.SFU.UDPAddr = "8443" }, "udp_addr"},
		{"negative workers", func(c *Config) { c.SFU.Workers = -1 }, "sfu.workers"},
		{"too many workers", func(c *Config) { c.SFU.Workers = 5000 }, "sfu.workers"},
		{"worker ports past 65535", func(c *Config) { c.SFU.UDPAddr = "0.0.0.0:65535"; c.SFU.Workers = 2 }, "passes 65535"},
		{"four workers", func(c *Config) { c.SFU.Workers = 4 }, ""},
		{"bad log level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"tiny body limit", func(c *Config) { c.HTTP.MaxBodyBytes = 10 }, "max_body_bytes"},
		{"trusted proxies ok", func(c *Config) { c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"} }, ""},
		{"trusted proxy not a cidr", func(c *Config) { c.HTTP.TrustedProxies = []string{"ingress"} }, "trusted_proxies"},
		{"trusting everyone", func(c *Config) { c.HTTP.TrustedProxies = []string{"0.0.0.0/0"} }, "trusts every address"},
		{"trusting every v6", func(c *Config) { c.HTTP.TrustedProxies = []string{"::/0"} }, "trusts every address"},
		{"ops addr off", func(c *Config) { c.HTTP.OpsAddr = "" }, ""},
		{"ops addr bad", func(c *Config) { c.HTTP.OpsAddr = "9464" }, "ops_addr"},
		{"turn over tls on a specific ip", func(c *Config) { c.Media.TURN.TLSAddr = "192.0.2.7:443" }, ""},
		{"turn over tls on every address needs public ip", func(c *Config) { c.Media.TURN.TLSAddr = ":443" }, "media.turn.public_ip"},
		{"turn over tcp bad addr", func(c *Config) { c.Media.TURN.TCPAddr = "3478" }, "media.turn.tcp_addr"},
		{"ops addr is the public one", func(c *Config) { c.HTTP.OpsAddr = c.ListenAddr }, "ops_addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validDev()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want mention of %q", err, tt.wantErr)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	c := validDev()
	c.Database.URL = "postgres://app:hunter2hunter2@db:5432/openvisit?sslmode=verify-full"
	c.S3.SecretKey = "minio-secret"
	r := c.Redacted()
	for _, s := range []string{r.Database.URL, r.S3.SecretKey} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "minio-secret") {
			t.Errorf("secret survived redaction: %q", s)
		}
	}
	if !strings.Contains(r.Database.URL, "db:5432") {
		t.Errorf("redaction lost the host: %q", r.Database.URL)
	}
	if c.S3.SecretKey != "minio-secret" {
		t.Error("Redacted modified the original")
	}
}

func TestEnvNamesCoverEveryKey(t *testing.T) {
	names := EnvNames()
	for _, want := range []string{"OPENVISIT_DATABASE_URL", "OPENVISIT_SFU_UDP_ADDR", "OPENVISIT_TOKEN_TTL", "OPENVISIT_S3_SECRET_KEY"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
}
