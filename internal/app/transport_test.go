package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/testenv"
)

// TestProductionStartRefusesUnverifiedDatabase starts a production media
// node whose database URL encrypts without verifying the server
// (sslmode=require): the start is refused, naming database.url; with
// allow_plaintext_transport it starts and warns with the reason.
func TestProductionStartRefusesUnverifiedDatabase(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("sslmode", "require") // TLS if the server offers it, never verified
	u.RawQuery = q.Encode()
	cfg := productionMediaNode(t, u.String())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err = app.New(ctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "database.url") || !strings.Contains(err.Error(), "sslmode=require") {
		t.Fatalf("app.New = %v, want the start refused naming database.url and sslmode=require", err)
	}

	cfg.AllowPlaintextTransport = "test: loopback only"
	var logs bytes.Buffer
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("app.New with allow_plaintext_transport: %v", err)
	}
	defer func() { _ = a.Shutdown(context.Background()) }()
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, `reason="test: loopback only"`) ||
		!strings.Contains(out, "sslmode=require") {
		t.Errorf("start did not warn with the reason and the link:\n%s", out)
	}
}

// productionMediaNode is the smallest production configuration: one media
// node with its certificate, the token public key and the auth secret.
func productionMediaNode(t *testing.T, dbURL string) config.Config {
	t.Helper()
	dir := t.TempDir()
	if _, err := certs.SelfSigned(dir, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secretFile := filepath.Join(dir, "auth-secret.key")
	if err := os.WriteFile(secretFile, []byte(base64.StdEncoding.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	cfg := config.Default()
	cfg.Roles = []string{config.RoleMedia}
	cfg.DataDir = dir
	cfg.TLS = config.TLS{CertFile: filepath.Join(dir, "selfsigned-cert.pem"), KeyFile: filepath.Join(dir, "selfsigned-key.pem")}
	cfg.Auth.SecretKeyFile = secretFile
	cfg.Token.PublicKey = base64.StdEncoding.EncodeToString(pub)
	cfg.Database.URL = dbURL
	cfg.SFU.UDPAddr = "0.0.0.0:0" // production refuses a loopback media address
	cfg.SFU.NodeID = "transport-test"
	cfg.HTTP.OpsAddr = "127.0.0.1:0" // many servers share the machine
	return cfg
}
