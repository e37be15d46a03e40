package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/smart"
	"github.com/openvisit/openvisit/internal/store"
)

const clientUsage = `usage: openvisit client create --name NAME --keys FILE --scopes "SCOPE ..." [--config FILE]
       openvisit client list [--config FILE]
       openvisit client revoke --id CLIENT_ID [--config FILE]`

// clientCmd manages the EHRs' machine clients of the FHIR API
// (internal/smart): each has public keys (a JWKS or PEM file) and granted
// scopes, signs its own assertions at /oauth/token, and is revocable at
// once. Each change is audited with the operator as actor.
func clientCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		return errors.New(clientUsage)
	}
	fs, cfgPath := configFlags("client "+args[0], stderr)
	name := fs.String("name", "", "the client's name, e.g. the EHR (create)")
	keys := fs.String("keys", "", "file of the client's public keys: a JWKS or PEM (create)")
	scopes := fs.String("scopes", "", "space-separated scopes: "+strings.Join(smart.KnownScopes(), " ")+" (create)")
	id := fs.String("id", "", "the client's id (revoke)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, applyMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	env := store.Env{DB: store.New(pool, nil), Clock: nowFunc} // machine clients hold no PHI
	ev := audit.Event{ActorID: operatorName(), ActorRole: review.OperatorRole}
	switch args[0] {
	case "create":
		doc, err := os.ReadFile(*keys)
		if err != nil {
			return fmt.Errorf("client create: --keys: %w", err)
		}
		c, err := smart.CreateClient(ctx, env, smart.Registration{Name: *name, Keys: doc, Scopes: *scopes}, ev)
		if err != nil {
			return err
		}
		base := strings.TrimRight(cfg.PublicURL, "/")
		fmt.Fprintf(stdout, "EHR client %s (id %s), scopes %s.\nClient id (iss and sub of its assertions): %s\nToken endpoint (aud): %s/oauth/token\nFHIR base: %s/fhir/R4\n",
			c.Name, c.ID, strings.Join(c.Scopes, " "), c.ID, base, base)
		return nil
	case "list":
		cs, err := smart.Clients(ctx, env)
		if err != nil {
			return err
		}
		for _, c := range cs {
			fmt.Fprintf(stdout, "%s  %-20s  created %s  %s  %s\n", c.ID, c.Name, c.CreatedAt.Format("2006-01-02"),
				clientState(c.RevokedAt), strings.Join(c.Scopes, " "))
		}
		return nil
	case "revoke":
		c, err := smart.RevokeClient(ctx, env, *id, ev)
		if errors.Is(err, store.ErrNotFound) {
			return errors.New("client revoke: no active EHR client with that id (see openvisit client list)")
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Revoked EHR client %s (%s): its access tokens stop working now.\n", c.ID, c.Name)
		return nil
	}
	return errors.New(clientUsage)
}
