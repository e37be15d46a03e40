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

	logs   *testenv.SyncBuffer
	cfg    config.Config
	logger *slog.Logger
	served chan error
	adjust func(*app.Options)
}

// StartServer starts a server for t in demo mode. mutate, when not nil,
// adjusts the configuration before the server starts. The server's log is
// kept in memory and written to the test log when the test fails, or always
// when OV_E2E_LOG is set (OV_E2E_LOG=debug adds debug lines).
func StartServer(t testing.TB, mutate func(*config.Config)) *Server {
	t.Helper()
	return StartServerWith(t, mutate, nil)
}

// StartServerWith is StartServer with wiring options adjusted by adjust
// (test hooks); a Restart keeps them.
func StartServerWith(t testing.TB, mutate func(*config.Config), adjust func(*app.Options)) *Server {
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
	cfg.HTTP.OpsAddr = "127.0.0.1:0" // many servers share the machine
	cfg.Media.LoopbackOnly = true    // browsers and the recorder meet the SFU on loopback
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

	s := &Server{URL: origin, DatabaseURL: cfg.Database.URL, logs: logs, cfg: cfg, logger: logger, adjust: adjust}
	s.start(t, ln)
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() || os.Getenv("OV_E2E_LOG") != "" {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return s
}

// start runs a new App on ln.
func (s *Server) start(t testing.TB, ln net.Listener) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := app.Options{Logger: s.logger, ConfigureWebRTC: LoopbackWebRTC}
	if s.adjust != nil {
		s.adjust(&opt)
	}
	a, err := app.New(ctx, s.cfg, opt)
	if err != nil {
		ln.Close()
		t.Logf("server log:\n%s", s.logs.String())
		t.Fatalf("e2e: app.New: %v", err)
	}
	s.App, s.served = a, make(chan error, 1)
	go func() { s.served <- a.Serve(ln) }()
}

// stop shuts the App down (once).
func (s *Server) stop(t testing.TB) {
	if s.App == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.App.Shutdown(ctx); err != nil {
		t.Errorf("e2e: shutdown: %v", err)
	}
	select {
	case err := <-s.served:
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("e2e: serve: %v", err)
		}
	case <-ctx.Done():
		t.Errorf("e2e: Serve did not return after Shutdown")
	}
	s.App = nil
}

// Restart shuts the process down and starts a new one with the same
// configuration, database and data directory on the same address, as an
// operator's restart (or a crash and restart) would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop(t)
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		t.Fatalf("e2e: listen again on %s: %v", s.cfg.ListenAddr, err)
	}
	s.start(t, ln)
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
