// Package accounts manages the clinic's staff accounts: inviting a provider
// or an admin (a one-time setup link), changing a role, disabling,
// enabling and unlocking. Each change commits with its audit entry
// (store.DB.Change); a change that takes access away also ends the user's
// sessions, which ends their calls on every media node
// (internal/revocation). Resetting a second factor is a sign-off by
// another admin: internal/review.
package accounts

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions.
const (
	ActionCreate  = "user.create"
	ActionRole    = "user.role.change"
	ActionDisable = "user.disable"
	ActionEnable  = "user.enable"
	ActionUnlock  = "user.unlock"
	ActionUpdate  = "user.update"
)

// Input limits.
const (
	MaxEmail = 254
	MaxName  = 200
)

var (
	ErrBadEmail   = errors.New("accounts: invalid email")
	ErrBadName    = errors.New("accounts: name too long")
	ErrBadRole    = errors.New("accounts: unknown role")
	ErrEmailTaken = errors.New("accounts: email taken")
	// ErrSelf: an admin may not change their own role or disable
	// themselves (it could lock every admin out).
	ErrSelf = errors.New("accounts: not on one's own account")
)

// ValidEmail is a plausible address: something@something, no spaces or
// angle brackets, at most MaxEmail bytes.
func ValidEmail(e string) bool {
	e = strings.TrimSpace(e)
	at := strings.LastIndexByte(e, '@')
	return len(e) >= 3 && len(e) <= MaxEmail && at > 0 && at < len(e)-1 && !strings.ContainsAny(e, " \t\r\n<>\"")
}

// Service changes staff accounts. It holds no state of its own.
type Service struct{ store.Env }

// New returns a Service on env.
func New(env store.Env) *Service { return &Service{env} }

// Invitation asks for a new staff account.
type Invitation struct {
	Email, Name, Role string
	// Expires is when the setup link stops working.
	Expires time.Time
	// Event carries the audit entry's actor fields.
	Event audit.Event
}

// Invite creates a staff user with a one-time setup secret (to set a
// password and enrol TOTP), audited in the same transaction. The admin API
// and the `openvisit user create` command both use it.
func (s *Service) Invite(ctx context.Context, in Invitation) (store.User, string, error) {
	switch {
	case !ValidEmail(in.Email):
		return store.User{}, "", ErrBadEmail
	case len(in.Name) > MaxName:
		return store.User{}, "", ErrBadName
	case !store.ValidRole(in.Role):
		return store.User{}, "", ErrBadRole
	}
	var u store.User
	var secret string
	ev := in.Event
	ev.Action, ev.ResourceType, ev.Outcome, ev.Reason = ActionCreate, "user", audit.Success, "role "+in.Role
	err := s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		if u, err = store.CreateUser(ctx, tx, in.Email, in.Name, in.Role); err != nil {
			return err
		}
		ev.ResourceID = string(u.ID)
		secret, err = store.CreateSetupLink(ctx, tx, u.ID, store.PurposeInvite, in.Expires)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, "", ErrEmailTaken
	}
	return u, secret, err
}

// Profile is what an identity provider keeps of an account (SCIM).
type Profile struct {
	Email, Name, ExternalID string
}

func (p Profile) check() error {
	switch {
	case !ValidEmail(p.Email):
		return ErrBadEmail
	case len(p.Name) > MaxName || len(p.ExternalID) > 256:
		return ErrBadName
	}
	return nil
}

// Provision creates a provider account for an identity provider (SCIM),
// with no setup link: its owner signs in through the clinic's identity
// provider. Audited in the same transaction with ev's actor.
func (s *Service) Provision(ctx context.Context, p Profile, ev audit.Event) (store.User, error) {
	if err := p.check(); err != nil {
		return store.User{}, err
	}
	var u store.User
	ev.Action, ev.ResourceType, ev.Outcome = ActionCreate, "user", audit.Success
	err := s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var err error
		if u, err = store.CreateUser(ctx, tx, p.Email, p.Name, store.RoleProvider); err != nil {
			return err
		}
		ev.ResourceID = string(u.ID)
		if p.ExternalID != "" {
			u.ExternalID = p.ExternalID
			return store.SetExternalID(ctx, tx, u.ID, p.ExternalID)
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, ErrEmailTaken
	}
	return u, err
}

// UpdateProfile changes c.Target's address, name and external id (SCIM
// replace or patch). A changed address ends the user's sessions: it is who
// they sign in as.
func (s *Service) UpdateProfile(ctx context.Context, c Change, p Profile) error {
	if err := p.check(); err != nil {
		return err
	}
	err := s.change(ctx, c, ActionUpdate, "", func(tx pgx.Tx) error {
		old, err := store.UserByID(ctx, tx, c.Target, false)
		if err != nil {
			return err
		}
		if err := store.UpdateProfile(ctx, tx, c.Target, p.Email, strings.TrimSpace(p.Name)); err != nil {
			return err
		}
		if err := store.SetExternalID(ctx, tx, c.Target, p.ExternalID); err != nil {
			return err
		}
		if store.NormalizeEmail(p.Email) != old.Email {
			_, err = store.RevokeUserSessions(ctx, tx, c.Target, s.Now(), "email change")
		}
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return ErrEmailTaken
	}
	return err
}

// List returns every staff user.
func (s *Service) List(ctx context.Context) ([]store.User, error) {
	return store.ListUsers(ctx, s.DB)
}

// Dormant returns the accounts that can still sign in (not disabled) and
// have not for days (counting from creation for one that never has).
func (s *Service) Dormant(ctx context.Context, days int) ([]store.User, error) {
	return store.DormantUsers(ctx, s.DB, s.Now().AddDate(0, 0, -days))
}

// Change is one admin's change to another user's account.
type Change struct {
	Admin  ids.UserID
	Target ids.UserID
	// Event carries the audit entry's actor fields.
	Event audit.Event
}

// SetRole gives c.Target role. It takes effect at the next sign-in, never
// mid-session: the user's sessions end (and with them their calls).
func (s *Service) SetRole(ctx context.Context, c Change, role string) error {
	if !store.ValidRole(role) {
		return ErrBadRole
	}
	if c.Target == c.Admin {
		return ErrSelf
	}
	return s.change(ctx, c, ActionRole, "to "+role, func(tx pgx.Tx) error {
		if err := store.SetRole(ctx, tx, c.Target, role); err != nil {
			return err
		}
		_, err := store.RevokeUserSessions(ctx, tx, c.Target, s.Now(), "role change")
		return err
	})
}

// Disable ends every session of c.Target at once and keeps them out. The
// audit entry's reason is c.Event.Reason (the deprovisioning sweep says why).
func (s *Service) Disable(ctx context.Context, c Change) error {
	if c.Target == c.Admin {
		return ErrSelf
	}
	now := s.Now()
	return s.change(ctx, c, ActionDisable, c.Event.Reason, func(tx pgx.Tx) error {
		if err := store.SetDisabled(ctx, tx, c.Target, &now); err != nil {
			return err
		}
		_, err := store.RevokeUserSessions(ctx, tx, c.Target, now, "disabled")
		return err
	})
}

// Enable lets a disabled user sign in again.
func (s *Service) Enable(ctx context.Context, c Change) error {
	return s.change(ctx, c, ActionEnable, "", func(tx pgx.Tx) error {
		return store.SetDisabled(ctx, tx, c.Target, nil)
	})
}

// Unlock clears a lock after failed sign-ins.
func (s *Service) Unlock(ctx context.Context, c Change) error {
	return s.change(ctx, c, ActionUnlock, "", func(tx pgx.Tx) error {
		return store.Unlock(ctx, tx, c.Target)
	})
}

// change locks the target user and runs fn with its audit entry in one
// transaction.
func (s *Service) change(ctx context.Context, c Change, action, reason string, fn func(pgx.Tx) error) error {
	if !ids.Valid(string(c.Target)) {
		return store.ErrNotFound
	}
	ev := c.Event
	if reason == "" {
		reason = c.Event.Reason // the caller's why (e.g. which identity provider)
	}
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome, ev.Reason = action, "user", string(c.Target), audit.Success, reason
	return s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		if _, err := store.UserByID(ctx, tx, c.Target, true); err != nil {
			return err
		}
		return fn(tx)
	})
}
