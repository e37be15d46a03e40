// Package review holds the actions in which one person signs off on what
// concerns another: acknowledging an alert, reviewing an emergency
// (break-glass) access grant, and resetting a user's second factor. Its one
// rule is that nobody reviews themselves: an admin cannot acknowledge an
// alert whose subject is that admin, review their own grant, or reset their
// own MFA. A second admin must — or, in a clinic with one admin, the
// operator through the `openvisit` command on the server, audited with the
// operator as actor and a required reason.
//
// The admin API and the command line both call these functions; each
// checks, changes and audits in one transaction.
package review

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions of this package.
const (
	ActionAlertAck    = "alert.acknowledge"
	ActionBreakReview = "break_glass.review"
	ActionResetMFA    = "user.mfa.reset"
)

// OperatorRole is the audit actor role of the server's command line.
const OperatorRole = "operator"

var (
	// ErrSelfReview: the reviewer is the subject.
	ErrSelfReview = errors.New("review: nobody reviews their own alert, grant or sign-in reset")
	// ErrReasonRequired: the operator must say why (there is no second
	// person to vouch for the action).
	ErrReasonRequired = errors.New("review: the operator must give a reason")
)

// maxReason bounds an operator's reason (it is stored in the audit entry:
// opaque facts only, never patient details).
const maxReason = 500

// Reviewer is who signs off.
type Reviewer struct {
	// UserID is the admin; empty for the operator (Event.ActorRole
	// OperatorRole).
	UserID ids.UserID
	// Event carries the actor fields of the audit entry (actor, role, IP,
	// user agent, reason); Action, resource and outcome are set here.
	Event audit.Event
}

// Operator returns the reviewer for the server's command line; who names
// the operating-system account that ran it.
func Operator(who, reason string) Reviewer {
	return Reviewer{Event: audit.Event{ActorID: who, ActorRole: OperatorRole, Reason: reason}}
}

func (r Reviewer) check(subject ids.UserID) error {
	if r.UserID == "" {
		if r.Event.ActorRole != OperatorRole {
			return errors.New("review: a reviewer is an admin or the operator")
		}
		if n := len(strings.TrimSpace(r.Event.Reason)); n == 0 || n > maxReason {
			return ErrReasonRequired
		}
		return nil
	}
	if subject != "" && subject == r.UserID {
		return ErrSelfReview
	}
	return nil
}

func (r Reviewer) audit(ctx context.Context, tx pgx.Tx, action, resourceType, id string) error {
	ev := r.Event
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = action, resourceType, id, audit.Success
	return audit.AppendTx(ctx, tx, ev)
}

// denied records a refused self-review (the refused change's own
// transaction rolled back) and returns err.
func (r Reviewer) denied(ctx context.Context, st *store.DB, err error, action, resourceType, id string) error {
	if !errors.Is(err, ErrSelfReview) {
		return err
	}
	ev := r.Event
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome, ev.Reason = action, resourceType, id, audit.Denied, "self_review"
	if aerr := audit.AppendTx(ctx, st, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// AckAlert acknowledges an open alert unless its subject is the reviewer.
func AckAlert(ctx context.Context, st *store.DB, r Reviewer, alertID string, now time.Time) error {
	err := st.Tx(ctx, func(tx pgx.Tx) error {
		subject, err := store.OpenAlertSubject(ctx, tx, alertID)
		if err != nil {
			return err
		}
		if err := r.check(ids.UserID(subject)); err != nil {
			return err
		}
		if err := store.AcknowledgeAlert(ctx, tx, alertID, r.UserID, now); err != nil {
			return err
		}
		return r.audit(ctx, tx, ActionAlertAck, "alert", alertID)
	})
	return r.denied(ctx, st, err, ActionAlertAck, "alert", alertID)
}

// ReviewBreakGlass marks an unreviewed grant reviewed unless it was granted
// to the reviewer.
func ReviewBreakGlass(ctx context.Context, st *store.DB, r Reviewer, grantID string, now time.Time) error {
	err := st.Tx(ctx, func(tx pgx.Tx) error {
		user, err := store.UnreviewedBreakGlassUser(ctx, tx, grantID)
		if err != nil {
			return err
		}
		if err := r.check(user); err != nil {
			return err
		}
		if err := store.ReviewBreakGlass(ctx, tx, grantID, r.UserID, now); err != nil {
			return err
		}
		return r.audit(ctx, tx, ActionBreakReview, "break_glass", grantID)
	})
	return r.denied(ctx, st, err, ActionBreakReview, "break_glass", grantID)
}

// ResetMFA removes a user's authenticator and recovery codes, ends their
// sessions and returns a one-time setup secret valid until expires —
// unless the user is the reviewer.
func ResetMFA(ctx context.Context, st *store.DB, r Reviewer, user ids.UserID, now, expires time.Time) (string, error) {
	var secret string
	err := st.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := store.UserByID(ctx, tx, user, true); err != nil {
			return err
		}
		if err := r.check(user); err != nil {
			return err
		}
		if err := store.ResetMFA(ctx, tx, user); err != nil {
			return err
		}
		if _, err := store.RevokeUserSessions(ctx, tx, user, now, "mfa reset"); err != nil {
			return err
		}
		var err error
		if secret, err = store.CreateSetupLink(ctx, tx, user, store.PurposeResetMFA, expires); err != nil {
			return err
		}
		return r.audit(ctx, tx, ActionResetMFA, "user", string(user))
	})
	if err != nil {
		return "", fmt.Errorf("review: reset mfa %s: %w", user, r.denied(ctx, st, err, ActionResetMFA, "user", string(user)))
	}
	return secret, nil
}
