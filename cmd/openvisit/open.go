package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/logging"
	"github.com/openvisit/openvisit/internal/store"
)

// What every subcommand starts with: its flags, the configuration, and
// (for the operator tools) a small pool on the configured database. Each
// command used to do these steps itself, with small differences.

// newFlagSet returns a subcommand's flag set: a bad flag is returned as an
// error (not an exit), and usage goes to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// configFlags is newFlagSet with the --config flag that every command but
// loadtest takes.
func configFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := newFlagSet(name, stderr)
	return fs, fs.String("config", "", "YAML config file")
}

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

// errNoDatabaseURL: an operator command was run without a database.
var errNoDatabaseURL = errors.New("config: database.url (OPENVISIT_DATABASE_URL) is required")

// Whether openDatabase applies pending migrations first.
const (
	noMigrations    = false
	applyMigrations = true
)

// openDatabase opens the database cfg names with two connections (an
// operator command does one thing at a time) and, when migrate is set,
// applies pending migrations. The caller closes the pool.
func openDatabase(ctx context.Context, cfg config.Config, migrate bool) (*pgxpool.Pool, error) {
	if cfg.Database.URL == "" {
		return nil, errNoDatabaseURL
	}
	pool, err := db.Open(ctx, cfg.Database.URL, 2)
	if err != nil {
		return nil, err
	}
	if migrate {
		if _, err := db.Migrate(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

// configAndDatabase loads the configuration at path and opens its database
// (openDatabase): the start of every operator command that needs both.
func configAndDatabase(ctx context.Context, path string, migrate bool) (config.Config, *pgxpool.Pool, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return cfg, nil, err
	}
	pool, err := openDatabase(ctx, cfg, migrate)
	return cfg, pool, err
}

// openStore is the store on pool with the keyring that wraps the PHI data
// keys (app.KeyringPath). With required, a missing keyring is an error (it
// is created by `serve` in development or by `openvisit keys generate`);
// without, the store has no keyring and any PHI it would read or write is
// refused (phi.ErrNoKeyring) — the review commands touch none.
func openStore(cfg config.Config, pool *pgxpool.Pool, required bool) (*store.DB, error) {
	path := app.KeyringPath(cfg)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !required {
		return store.New(pool, nil), nil
	}
	kf, err := keys.OpenKeyringFile(path, false, nowFunc())
	if err != nil {
		return nil, err
	}
	return store.New(pool, kf), nil
}
