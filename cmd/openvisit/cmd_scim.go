package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/scim"
	"github.com/openvisit/openvisit/internal/store"
)

const scimUsage = `usage: openvisit scim token create --idp NAME [--config FILE]
       openvisit scim token list [--config FILE]
       openvisit scim token revoke --id CLIENT_ID [--config FILE]`

// scimCmd manages the bearer tokens identity providers call /scim/v2 with
// (internal/scim): one per identity provider, shown once, stored hashed,
// revocable at once. Each change is audited with the operator as actor.
func scimCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "token" {
		return errors.New(scimUsage)
	}
	fs, cfgPath := configFlags("scim token "+args[1], stderr)
	idp := fs.String("idp", "", "the identity provider's name (create)")
	id := fs.String("id", "", "the SCIM client's id (revoke)")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, applyMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	env := store.Env{DB: store.New(pool, nil), Clock: nowFunc} // SCIM clients and staff accounts hold no PHI
	ev := audit.Event{ActorID: operatorName(), ActorRole: review.OperatorRole}
	switch args[1] {
	case "create":
		c, tok, err := scim.CreateToken(ctx, env, *idp, ev)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "SCIM client %s for %s (id %s).\nBase URL: %s\nBearer token (shown once; store it in the identity provider):\n  %s\n",
			c.Kind, c.Name, c.ID, scim.BaseURL(cfg.PublicURL), tok)
		return nil
	case "list":
		cs, err := scim.Tokens(ctx, env)
		if err != nil {
			return err
		}
		for _, c := range cs {
			fmt.Fprintf(stdout, "%s  %-20s  created %s  %s\n", c.ID, c.Name, c.CreatedAt.Format("2006-01-02"), clientState(c.RevokedAt))
		}
		return nil
	case "revoke":
		c, err := scim.RevokeToken(ctx, env, *id, ev)
		if errors.Is(err, store.ErrNotFound) {
			return errors.New("scim token revoke: no active SCIM client with that id (see openvisit scim token list)")
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Revoked SCIM client %s (%s).\n", c.ID, c.Name)
		return nil
	}
	return errors.New(scimUsage)
}

// clientState words a machine client's state (SCIM or EHR) for a listing.
func clientState(revokedAt *time.Time) string {
	if revokedAt == nil {
		return "active"
	}
	return "revoked " + revokedAt.Format("2006-01-02 15:04")
}
