package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/db"
)

// serve runs `openvisit serve`: the roles this process was given, until
// SIGINT or SIGTERM.
func serve(args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := configFlags("serve", stderr)
	addr := fs.String("addr", "", "HTTPS listen address (overrides listen_addr)")
	roles := fs.String("roles", "", "comma-separated roles: api,media,recorder (overrides roles)")
	webDir := fs.String("web-dir", "", "serve web pages from this directory (development)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.ListenAddr = *addr
	}
	if *roles != "" {
		cfg.Roles = strings.Split(*roles, ",")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// sigs sees the same signals: SIGTERM drains a media node first (a
	// rolling update drops no call); SIGINT, or a second signal, does not wait.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	a, ln, log, err := startApp(ctx, cfg, *webDir, stderr)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "roles", cfg.Roles)
	if links := a.DemoLinks(); len(links) > 0 {
		fmt.Fprintf(stdout, "\nOpenVisit is running at %s (self-signed certificate: accept it in the browser).\n", cfg.PublicURL)
		fmt.Fprintln(stdout, "Demo mode: open each one-time link in its own browser window to hold a first call:")
		fmt.Fprintf(stdout, "  provider: %s\n  patient:  %s\n\n", links[0], links[1])
	}

	errc := make(chan error, 1)
	go func() { errc <- a.Serve(ln) }()
	var sig os.Signal
	select {
	case err := <-errc:
		_ = a.Shutdown(context.Background())
		return err
	case sig = <-sigs:
	}
	if sig == syscall.SIGTERM && cfg.Has(config.RoleMedia) && cfg.Cluster.DrainTimeout > 0 {
		drain(a, cfg, sigs, log)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-errc
}

// startApp validates cfg, builds the app and listens on cfg.ListenAddr:
// what serve and the load test's spawned server share. On success the
// caller owns the app (Serve, then Shutdown).
func startApp(ctx context.Context, cfg config.Config, webDir string, stderr io.Writer) (*app.App, net.Listener, *slog.Logger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("config: %w", err)
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	log.Info("effective config", "config", cfg.Redacted())
	a, err := app.New(ctx, cfg, app.Options{Logger: log, WebDir: webDir})
	if err != nil {
		return nil, nil, nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		_ = a.Shutdown(context.Background())
		return nil, nil, nil, fmt.Errorf("listen: %w", err)
	}
	return a, ln, log, nil
}

// drain waits, up to cluster.drain_timeout, for the media node's calls to
// end; a second signal stops the wait.
func drain(a *app.App, cfg config.Config, sigs <-chan os.Signal, log *slog.Logger) {
	dctx, dcancel := context.WithTimeout(context.Background(), cfg.Cluster.DrainTimeout)
	defer dcancel()
	go func() {
		select {
		case <-sigs:
			dcancel()
		case <-dctx.Done():
		}
	}()
	if err := a.Drain(dctx); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
}

// migrate runs `openvisit migrate`: apply pending database migrations.
func migrate(args []string, stderr io.Writer) error {
	fs, cfgPath := configFlags("migrate", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, noMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	n, err := db.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	log.Info("migrations applied", "count", n)
	return nil
}
