package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/webhooks"
)

const webhookUsage = `usage: openvisit webhook add --url URL --kinds KIND,… [--phi] [--config FILE]
       openvisit webhook list [--config FILE]
       openvisit webhook disable --id ID [--config FILE]
       openvisit webhook log [--id ID] [--limit N] [--config FILE]`

// webhookCmd manages visit event subscriptions (internal/webhooks) as the
// admin API does, with the operator as the audited actor.
func webhookCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		return errors.New(webhookUsage)
	}
	fs, cfgPath := configFlags("webhook "+args[0], stderr)
	url := fs.String("url", "", "the receiver's https URL (add)")
	kinds := fs.String("kinds", "", "comma-separated event kinds: "+strings.Join(webhooks.Kinds, ","))
	phi := fs.Bool("phi", false, "grant the subscription PHI (patient name, times, reason) in payloads")
	id := fs.String("id", "", "the subscription's id (disable, log)")
	limit := fs.Int("limit", 50, "deliveries to show (log)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, applyMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	secret, err := keys.LoadSecret(app.KeyFilePaths(cfg)[app.KeyAuthSecret], false)
	if err != nil {
		return err
	}
	sealer, err := keys.NewSealer(secret)
	if err != nil {
		return err
	}
	db := store.New(pool, nil) // subscriptions and the log hold no PHI
	subs := &webhooks.Subscriptions{DB: db, Sealer: sealer, AllowHTTP: cfg.Environment == config.Development}
	ev := audit.Event{ActorID: operatorName(), ActorRole: review.OperatorRole}
	switch args[0] {
	case "add":
		c, err := subs.Create(ctx, webhooks.NewSubscription{URL: *url, Kinds: splitKinds(*kinds), MayReceivePHI: *phi}, ev)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Subscription %s to %s for %s.\nSigning secret (shown once; give it to the receiver):\n  %s\n",
			c.ID, c.URL, strings.Join(c.Kinds, ","), c.Secret)
		return nil
	case "list":
		return listWebhooks(ctx, db, stdout)
	case "disable":
		if err := subs.Disable(ctx, *id, nowFunc(), ev); errors.Is(err, store.ErrNotFound) {
			return errors.New("webhook disable: no active subscription with that id (see openvisit webhook list)")
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Disabled subscription %s; its pending deliveries are failed.\n", *id)
		return nil
	case "log":
		return webhookLog(ctx, db, *id, *limit, stdout)
	}
	return errors.New(webhookUsage)
}

func splitKinds(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

func listWebhooks(ctx context.Context, db *store.DB, stdout io.Writer) error {
	subs, err := store.WebhookSubscriptions(ctx, db)
	if err != nil {
		return err
	}
	for _, s := range subs {
		state := "active"
		if s.DisabledAt != nil {
			state = "disabled " + s.DisabledAt.Format("2006-01-02 15:04")
		}
		grant := ""
		if s.MayReceivePHI {
			grant = "  PHI granted"
		}
		fmt.Fprintf(stdout, "%s  %s  %s  %s%s\n", s.ID, s.URL, strings.Join(s.Kinds, ","), state, grant)
	}
	return nil
}

func webhookLog(ctx context.Context, db *store.DB, id string, limit int, stdout io.Writer) error {
	if limit < 1 || limit > 500 {
		return errors.New("webhook log: --limit is 1 to 500")
	}
	log, err := store.WebhookLog(ctx, db, id, limit)
	if err != nil {
		return err
	}
	for _, e := range log {
		fmt.Fprintf(stdout, "%d  %s  %-20s  visit %s  %s after %d attempts\n", e.ID, e.OccurredAt.Format("2006-01-02 15:04:05"),
			e.Kind, e.VisitID, e.Status, e.Attempts)
		for _, a := range e.AttemptLog {
			fmt.Fprintf(stdout, "      #%d %s  status %d  %s\n", a.Attempt, a.At.Format("15:04:05"), a.StatusCode, a.ErrorClass)
		}
	}
	return nil
}
