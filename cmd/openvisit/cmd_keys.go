package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/recording"
)

const keysUsage = `usage: openvisit keys COMMAND [--config FILE]

  generate       create the recording keyring (recording.keyring_file) with one primary KEK
  list           list KEKs: primary, retired, and how many stored data keys each wraps
  rotate         add a new primary KEK (new recordings use it)
  rewrap         re-wrap every stored data key under the primary KEK (media is not touched)
  retire KEK_ID  destroy a KEK's key material; refused while any data key needs it

Every command but list is audited (actor: the operator's OS user).`

// keysCmd runs `openvisit keys …`: the recording keyring's operator tools.
func keysCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError(keysUsage)
	}
	cmd := args[0]
	fs := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	path := app.KeyringPath(cfg)
	now := nowFunc()
	actor := "operator"
	if u, err := user.Current(); err == nil {
		actor = "os:" + u.Username
	}
	ctx := context.Background()
	openPool := func() (*pgxpool.Pool, error) {
		if cfg.Database.URL == "" {
			return nil, errors.New("config: database.url (OPENVISIT_DATABASE_URL) is required")
		}
		pool, err := db.Open(ctx, cfg.Database.URL, 2)
		if err != nil {
			return nil, err
		}
		if _, err := db.Migrate(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
		return pool, nil
	}

	switch cmd {
	case "generate":
		if fs.NArg() != 0 {
			return usageError(keysUsage)
		}
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("keys: %s exists; use `openvisit keys rotate` to add a key", path)
		}
		kf, err := keys.OpenKeyringFile(path, true, now)
		if err != nil {
			return err
		}
		kr, _ := kf.Keyring()
		if pool, err := openPool(); err == nil {
			defer pool.Close()
			if err := audit.New(pool).Append(ctx, audit.Event{ActorID: actor, ActorRole: "operator", Action: recording.ActionKEKGenerate,
				ResourceType: "kek", ResourceID: kr.Primary(), Outcome: audit.Success}); err != nil {
				return fmt.Errorf("keys: generated %s but could not audit it: %w", path, err)
			}
		} else {
			fmt.Fprintln(stderr, "warning: no database; the generation is not audited:", err)
		}
		fmt.Fprintf(stdout, "created %s (mode 0600) with primary KEK %s\nKeep it on a secret mount and back it up: recordings cannot be decrypted without it.\n", path, kr.Primary())
		return nil
	case "list":
		kf, err := keys.OpenKeyringFile(path, false, now)
		if err != nil {
			return err
		}
		kr, err := kf.Keyring()
		if err != nil {
			return err
		}
		usage := map[string]int64{}
		if pool, err := openPool(); err == nil {
			defer pool.Close()
			if usage, err = store.KEKUsage(ctx, pool); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(stderr, "warning: no database; data key counts are unknown:", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEK\tCREATED\tSTATE\tDATA KEYS")
		for _, k := range kr.List() {
			state := "active"
			switch {
			case k.Primary:
				state = "primary"
			case k.RetiredAt != nil:
				state = "retired " + k.RetiredAt.Format("2006-01-02")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", k.ID, k.CreatedAt.Format("2006-01-02 15:04"), state, usage[k.ID])
		}
		return tw.Flush()
	case "rotate", "rewrap", "retire":
		kf, err := keys.OpenKeyringFile(path, false, now)
		if err != nil {
			return err
		}
		pool, err := openPool()
		if err != nil {
			return err
		}
		defer pool.Close()
		switch cmd {
		case "rotate":
			id, err := recording.RotateKEK(ctx, pool, kf, actor, now)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "new primary KEK %s; run `openvisit keys rewrap` to move stored data keys to it\n", id)
		case "rewrap":
			n, err := recording.Rewrap(ctx, pool, kf, actor)
			if err != nil {
				return err
			}
			kr, _ := kf.Keyring()
			fmt.Fprintf(stdout, "re-wrapped %d data keys under %s\n", n, kr.Primary())
		case "retire":
			if fs.NArg() != 1 {
				return errors.New("usage: openvisit keys retire KEK_ID")
			}
			if err := recording.RetireKEK(ctx, pool, kf, fs.Arg(0), actor, now); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "retired %s: its key material is destroyed\n", fs.Arg(0))
		}
		return nil
	}
	return usageError(keysUsage)
}

// usageError carries a usage text (which ends in punctuation, as prose
// does) as an error.
type usageError string

func (u usageError) Error() string { return string(u) }
