package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/config"
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
	fs, cfgPath := configFlags("keys "+cmd, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	k := keysRun{ctx: context.Background(), cfg: cfg, path: app.KeyringPath(cfg), now: nowFunc(),
		actor: "operator", stdout: stdout, stderr: stderr}
	if u, err := user.Current(); err == nil {
		k.actor = "os:" + u.Username
	}
	switch {
	case cmd == "generate" && fs.NArg() == 0:
		return k.generate()
	case cmd == "list":
		return k.list()
	case cmd == "rotate" || cmd == "rewrap" || cmd == "retire":
		return k.change(cmd, fs.Args())
	}
	return usageError(keysUsage)
}

// keysRun is one run of a keys command.
type keysRun struct {
	ctx            context.Context
	cfg            config.Config
	path           string // the keyring file
	now            time.Time
	actor          string // the audit entries' actor
	stdout, stderr io.Writer
}

// generate creates the keyring. Without a database the generation is
// still done, but not audited (a first install may have no database yet).
func (k keysRun) generate() error {
	if _, err := os.Stat(k.path); err == nil {
		return fmt.Errorf("keys: %s exists; use `openvisit keys rotate` to add a key", k.path)
	}
	kf, err := keys.OpenKeyringFile(k.path, true, k.now)
	if err != nil {
		return err
	}
	kr, _ := kf.Keyring()
	if pool, err := openDatabase(k.ctx, k.cfg, applyMigrations); err == nil {
		defer pool.Close()
		if err := audit.New(pool).Append(k.ctx, audit.Event{ActorID: k.actor, ActorRole: "operator", Action: recording.ActionKEKGenerate,
			ResourceType: "kek", ResourceID: kr.Primary(), Outcome: audit.Success}); err != nil {
			return fmt.Errorf("keys: generated %s but could not audit it: %w", k.path, err)
		}
	} else {
		fmt.Fprintln(k.stderr, "warning: no database; the generation is not audited:", err)
	}
	fmt.Fprintf(k.stdout, "created %s (mode 0600) with primary KEK %s\nKeep it on a secret mount and back it up: recordings cannot be decrypted without it.\n", k.path, kr.Primary())
	return nil
}

// list prints the KEKs and, when the database answers, how many stored
// data keys each wraps.
func (k keysRun) list() error {
	kf, err := keys.OpenKeyringFile(k.path, false, k.now)
	if err != nil {
		return err
	}
	kr, err := kf.Keyring()
	if err != nil {
		return err
	}
	usage := map[string]int64{}
	if pool, err := openDatabase(k.ctx, k.cfg, applyMigrations); err == nil {
		defer pool.Close()
		if usage, err = store.KEKUsage(k.ctx, pool); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(k.stderr, "warning: no database; data key counts are unknown:", err)
	}
	tw := tabwriter.NewWriter(k.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEK\tCREATED\tSTATE\tDATA KEYS")
	for _, kek := range kr.List() {
		state := "active"
		switch {
		case kek.Primary:
			state = "primary"
		case kek.RetiredAt != nil:
			state = "retired " + kek.RetiredAt.Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", kek.ID, kek.CreatedAt.Format("2006-01-02 15:04"), state, usage[kek.ID])
	}
	return tw.Flush()
}

// change runs rotate, rewrap or retire: each needs the database, and
// recording audits what it does.
func (k keysRun) change(cmd string, args []string) error {
	kf, err := keys.OpenKeyringFile(k.path, false, k.now)
	if err != nil {
		return err
	}
	pool, err := openDatabase(k.ctx, k.cfg, applyMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch cmd {
	case "rotate":
		id, err := recording.RotateKEK(k.ctx, pool, kf, k.actor, k.now)
		if err != nil {
			return err
		}
		fmt.Fprintf(k.stdout, "new primary KEK %s; run `openvisit keys rewrap` to move stored data keys to it\n", id)
	case "rewrap":
		n, err := recording.Rewrap(k.ctx, pool, kf, k.actor)
		if err != nil {
			return err
		}
		kr, _ := kf.Keyring()
		fmt.Fprintf(k.stdout, "re-wrapped %d data keys under %s\n", n, kr.Primary())
	case "retire":
		if len(args) != 1 {
			return errors.New("usage: openvisit keys retire KEK_ID")
		}
		if err := recording.RetireKEK(k.ctx, pool, kf, args[0], k.actor, k.now); err != nil {
			return err
		}
		fmt.Fprintf(k.stdout, "retired %s: its key material is destroyed\n", args[0])
	}
	return nil
}

// usageError carries a usage text (which ends in punctuation, as prose
// does) as an error.
type usageError string

func (u usageError) Error() string { return string(u) }
