package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/testenv"
)

// Server is a whole OpenVisit process (API and media roles) serving HTTPS
// with its self-signed development certificate on 127.0.0.1, backed by a
// fresh Postgres database, with the SFU on loopback. It stops when the test
// ends.
type Server struct {
	// URL is the public origin, https://127.0.0.1:<port>.
	URL string
	// App is the running application.
	App *app.App
	// DatabaseURL is the server's own (fresh, migrated) database, for tests
	// that set up data directly with the store package.
	DatabaseURL string

	logs *testenv.SyncBuffer
}

// StartServer starts a server for t in demo mode. mutate, when not nil,
// adjusts the configuration before the server starts. The server's log is
// kept in memory and written to the test log when the test fails, or always
// when OV_E2E_LOG is set (OV_E2E_LOG=debug adds debug lines).
func StartServer(t testing.TB, mutate func(*config.Config)) *Server {
	t.Helper()
	dsn := testenv.Postgres(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: listen: %v", err)
	}
	origin := "https://" + ln.Addr().String()

	cfg := config.Default()
	cfg.Environment = config.Development
	cfg.Demo = true
	// The recorder role needs object storage; the call tests do not.
	cfg.Roles = []string{config.RoleAPI, config.RoleMedia}
	cfg.Database.URL = dsn
	cfg.DataDir = t.TempDir()
	cfg.ListenAddr = ln.Addr().String()
	cfg.PublicURL = origin
	cfg.SFU.UDPAddr = "127.0.0.1:0"
	cfg.Media.LoopbackOnly = true // browsers and the recorder meet the SFU on loopback
	cfg.HTTP.ShutdownTimeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}

	logs := &testenv.SyncBuffer{}
	level := slog.LevelInfo
	if os.Getenv("OV_E2E_LOG") == "debug" {
		level = slog.LevelDebug // includes Pion's ICE and DTLS chatter
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, app.Options{Logger: logger, ConfigureWebRTC: LoopbackWebRTC})
	if err != nil {
		ln.Close()
		t.Logf("server log:\n%s", logs.String())
		t.Fatalf("e2e: app.New: %v", err)
	}

	served := make(chan error, 1)
	go func() { served <- a.Serve(ln) }()

	s := &Server{URL: origin, App: a, DatabaseURL: cfg.Database.URL, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("e2e: shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				t.Errorf("e2e: serve: %v", err)
			}
		case <-ctx.Done():
			t.Errorf("e2e: Serve did not return after Shutdown")
		}
		if t.Failed() || os.Getenv("OV_E2E_LOG") != "" {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return s
}

// DemoLinks returns the server's one-time demo links (the first for the
// provider, the second for the patient), each https://…/call#code=….
func (s *Server) DemoLinks(t testing.TB) []string {
	t.Helper()
	links := s.App.DemoLinks()
	if len(links) < 2 {
		t.Fatalf("e2e: want two demo links, got %d", len(links))
	}
	for _, l := range links {
		if !strings.HasPrefix(l, s.URL+"/call#code=") {
			t.Fatalf("e2e: demo link %s does not point at %s/call#code=…", redactFragment(l), s.URL)
		}
	}
	return links
}

// Logs returns what the server has logged so far.
func (s *Server) Logs() string { return s.logs.String() }
