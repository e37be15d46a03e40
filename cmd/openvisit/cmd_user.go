package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// userCmd runs `openvisit user create`: the bootstrap for the first admin
// and an operator's way to add staff without the admin pages; and `openvisit
// user reset-mfa` (cmd_review.go).
func userCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reset-mfa" {
		return resetMFACmd(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: openvisit user create --role admin|provider --email ADDRESS [--name NAME] [--if-no-admin] [--config FILE]\n       openvisit user reset-mfa --email ADDRESS --reason TEXT [--config FILE]")
	}
	fs, cfgPath := configFlags("user create", stderr)
	role := fs.String("role", "", "admin or provider")
	email := fs.String("email", "", "the user's email address")
	name := fs.String("name", "", "the user's display name")
	ifNoAdmin := fs.Bool("if-no-admin", false, "do nothing when an active admin exists (for first-start scripts)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if !store.ValidRole(*role) || *email == "" {
		return errors.New("user create: --role admin|provider and --email are required")
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, applyMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool, nil) // staff accounts hold no PHI
	if *ifNoAdmin {
		n, err := store.CountAdmins(ctx, pool)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintln(stdout, "An admin already exists; sign in at", cfg.PublicURL+"/signin")
			return nil
		}
		// A first admin who never finished setup gets a fresh link (the
		// old one is voided), so a restart never strands the newcomer.
		if u, err := store.UserByEmail(ctx, pool, *email); err == nil && u.Role == store.RoleAdmin {
			secret, err := store.CreateSetupLink(ctx, pool, u.ID, store.PurposeInvite, nowFunc().Add(cfg.Auth.SetupLinkTTL))
			if err != nil {
				return err
			}
			if err := audit.New(pool).Append(ctx, audit.Event{ActorID: operatorName(), ActorRole: review.OperatorRole, Action: "user.setup_link.reissue",
				ResourceType: "user", ResourceID: string(u.ID), Outcome: audit.Success, Reason: "cli"}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "First admin %s has not finished setup. New one-time setup link:\n  %s\n", u.Email, signaling.SetupURL(cfg.PublicURL, secret))
			return nil
		}
	}
	ev := audit.Event{ActorID: operatorName(), ActorRole: review.OperatorRole, Reason: "cli"}
	u, link, err := signaling.InviteUser(ctx, st, ev, *email, *name, *role, nowFunc().Add(cfg.Auth.SetupLinkTTL), cfg.PublicURL)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("user create: a user with that email already exists")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created %s %s (id %s).\nOne-time setup link (set a password and enrol an authenticator app; valid %s):\n  %s\n",
		u.Role, u.Email, u.ID, cfg.Auth.SetupLinkTTL, link)
	return nil
}
