package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/signaling"
)

// The operator's side of "nobody reviews themselves" (internal/review): in
// a clinic with one admin, what concerns that admin is signed off on the
// server, audited with the operator as actor and the reason given.

// alertsCmd runs `openvisit alerts ack ALERT_ID --reason TEXT`.
func alertsCmd(args []string, stdout, stderr io.Writer) error {
	const use = "usage: openvisit alerts ack ALERT_ID --reason TEXT [--config FILE]"
	if len(args) == 0 || args[0] != "ack" {
		return errors.New(use)
	}
	return operatorReview(args[1:], stderr, use, func(ctx context.Context, st *store.DB, cfg config.Config, r review.Reviewer, id string) error {
		if err := review.AckAlert(ctx, st, r, id, nowFunc()); err != nil {
			return reviewError("alerts ack", err)
		}
		fmt.Fprintf(stdout, "Alert %s acknowledged by the operator (audited).\n", id)
		return nil
	})
}

// breakGlassCmd runs `openvisit break-glass review GRANT_ID --reason TEXT`.
func breakGlassCmd(args []string, stdout, stderr io.Writer) error {
	const use = "usage: openvisit break-glass review GRANT_ID --reason TEXT [--config FILE]"
	if len(args) == 0 || args[0] != "review" {
		return errors.New(use)
	}
	return operatorReview(args[1:], stderr, use, func(ctx context.Context, st *store.DB, cfg config.Config, r review.Reviewer, id string) error {
		if err := review.ReviewBreakGlass(ctx, st, r, id, nowFunc()); err != nil {
			return reviewError("break-glass review", err)
		}
		fmt.Fprintf(stdout, "Emergency access grant %s reviewed by the operator (audited).\n", id)
		return nil
	})
}

// resetMFACmd runs `openvisit user reset-mfa --email ADDRESS --reason TEXT`.
func resetMFACmd(args []string, stdout, stderr io.Writer) error {
	const use = "usage: openvisit user reset-mfa --email ADDRESS --reason TEXT [--config FILE]"
	return operatorReview(args, stderr, use, func(ctx context.Context, st *store.DB, cfg config.Config, r review.Reviewer, email string) error {
		u, err := store.UserByEmail(ctx, st, email)
		if err != nil {
			return reviewError("user reset-mfa", err)
		}
		now := nowFunc()
		secret, err := review.ResetMFA(ctx, st, r, u.ID, now, now.Add(cfg.Auth.SetupLinkTTL))
		if err != nil {
			return reviewError("user reset-mfa", err)
		}
		fmt.Fprintf(stdout, "Sign-in reset for %s (id %s); their sessions ended (audited).\nOne-time link to enrol an authenticator again (valid %s):\n  %s\n",
			u.Email, u.ID, cfg.Auth.SetupLinkTTL, signaling.SetupURL(cfg.PublicURL, secret))
		return nil
	})
}

// operatorReview parses `[ID] --reason TEXT [--email ADDRESS] [--config
// FILE]`, opens the database and runs fn with the operator as reviewer and
// the ID (or, for reset-mfa, the email).
func operatorReview(args []string, stderr io.Writer, use string,
	fn func(context.Context, *store.DB, config.Config, review.Reviewer, string) error) error {
	fs, cfgPath := configFlags("openvisit", stderr)
	reason := fs.String("reason", "", "why the operator signs off (stored in the audit trail; no patient details)")
	var email *string
	if strings.Contains(use, "--email") {
		email = fs.String("email", "", "the user's email address")
	}
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if email != nil {
		id = *email
	} else if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return errors.New(use)
	}
	if id == "" || strings.TrimSpace(*reason) == "" {
		return errors.New(use)
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, noMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := openStore(cfg, pool, false)
	if err != nil {
		return err
	}
	return fn(ctx, st, cfg, review.Operator(operatorName(), *reason), id)
}

// operatorName names the operating-system account that runs the command
// (the one behind sudo, when there is one) for the audit entry.
func operatorName() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return "os:" + u
	}
	if u, err := user.Current(); err == nil {
		return "os:" + u.Username
	}
	return "os:uid" + fmt.Sprint(os.Getuid())
}

func reviewError(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%s: not found, or already handled", op)
	case errors.Is(err, review.ErrReasonRequired):
		return fmt.Errorf("%s: --reason is required (at most 500 characters)", op)
	}
	return fmt.Errorf("%s: %w", op, err)
}
