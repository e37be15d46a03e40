// Command openvisit is the one OpenVisit binary: every role (api, media,
// recorder) and every operator tool is a subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/logging"
)

const usage = `openvisit — telemedicine video visits

Usage:
  openvisit serve   [--config FILE] [--addr HOST:PORT] [--roles api,media,recorder] [--web-dir DIR]
  openvisit migrate [--config FILE]
  openvisit keys    generate|list|rotate|rewrap|retire KEK_ID [--config FILE]
  openvisit loadtest --spawn | --url URL --signing-key FILE [--visits N] [--duration D] [--json]
  openvisit user create --role admin|provider --email ADDRESS [--name NAME] [--if-no-admin]
  openvisit user reset-mfa --email ADDRESS --reason TEXT
  openvisit alerts ack ALERT_ID --reason TEXT
  openvisit break-glass review GRANT_ID --reason TEXT
  openvisit audit verify [--config FILE] [--public-key BASE64]
  openvisit doctor  [--config FILE] [--roles ROLES]   (what the media node advertises; can browsers reach it)

An admin cannot acknowledge an alert about themselves, review their own
break-glass grant or reset their own sign-in; another admin does, or (with one
admin) the operator with the commands above, audited as the operator.

Configuration comes from defaults, then the YAML file, then OPENVISIT_*
environment variables (see README.md).
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "openvisit:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "migrate":
		return migrate(args[1:], stderr)
	case "user":
		return userCmd(args[1:], stdout, stderr)
	case "loadtest":
		return loadtestCmd(args[1:], stdout, stderr)
	case "keys":
		return keysCmd(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "doctor":
		return doctorCmd(args[1:], stdout, stderr)
	case "alerts":
		return alertsCmd(args[1:], stdout, stderr)
	case "break-glass":
		return breakGlassCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// nowFunc is the clock of the commands (a variable for tests).
var nowFunc = time.Now

// loadConfig reads the file named by --config and the environment. Every
// command connects over the configured links, so the transport rule
// (verified TLS to PostgreSQL and S3 in production) is checked here for all
// of them, not only by serve's full Validate.
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path, os.Environ())
	if err != nil {
		return cfg, err
	}
	if err := cfg.ValidateTransport(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, error) {
	return logging.New(w, cfg.Log.Level, cfg.Log.Format)
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file")
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
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	log.Info("effective config", "config", cfg.Redacted())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// sigs sees the same signals: SIGTERM drains a media node first (a
	// rolling update drops no call); SIGINT, or a second signal, does not wait.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	a, err := app.New(ctx, cfg, app.Options{Logger: log, WebDir: *webDir})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		_ = a.Shutdown(context.Background())
		return fmt.Errorf("listen: %w", err)
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
		dctx, dcancel := context.WithTimeout(context.Background(), cfg.Cluster.DrainTimeout)
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
		dcancel()
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-errc
}

func migrate(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Database.URL == "" {
		return errors.New("config: database.url (OPENVISIT_DATABASE_URL) is required")
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	pool, err := db.Open(ctx, cfg.Database.URL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := db.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	log.Info("migrations applied", "count", n)
	return nil
}
