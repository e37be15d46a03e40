package sso

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/store"
)

// ErrEmailTaken: an account has the token's address but is linked to
// another subject of this issuer, or the issuer does not vouch for the
// address (email_verified), so it is not linked.
var ErrEmailTaken = errors.New("sso: email belongs to an account not linked to this person")

// refreshPurpose binds a sealed refresh token to its link.
func refreshPurpose(issuer, subject string) string {
	return "oidc-refresh-token:" + issuer + ":" + subject
}

// signIn decides the role, finds or creates the account, keeps the refresh
// token and opens the session (or asks for the local second factor).
func (s *Service) signIn(ctx context.Context, i *issuer, c Claims, refreshToken string, src signin.Source) (Result, error) {
	id := i.cfg.ID
	ev := audit.Event{ActorID: actorFor(id, c.Subject), ActorRole: "oidc", Action: ActionMap, ResourceType: "oidc_issuer",
		ResourceID: id, IP: src.IP, UserAgent: src.UserAgent}
	role := RoleFor(i.cfg, c.Groups)
	if role == "" {
		ev.Outcome, ev.Reason = audit.Denied, "no mapped group"
		s.p.Record(ctx, ev)
		return Result{}, ErrNotMapped
	}
	ev.Outcome, ev.Reason = audit.Success, "role "+role+" from groups"
	s.p.Record(ctx, ev)
	u, err := s.account(ctx, id, c, role, src)
	if err != nil {
		return Result{}, err
	}
	var sealed []byte
	if refreshToken != "" {
		if sealed, err = s.p.Sealer.Seal(refreshPurpose(id, c.Subject), []byte(refreshToken)); err != nil {
			return Result{}, err
		}
	}
	if err := store.RecordOIDCVouch(ctx, s.p.DB, id, c.Subject, sealed, true, s.p.Now()); err != nil {
		return Result{}, err
	}
	opened, err := s.p.Signin.OpenFederated(ctx, signin.Federated{User: u, Issuer: id, MFA: MFAAsserted(i.cfg, c),
		IP: src.IP, UserAgent: src.UserAgent})
	if errors.Is(err, signin.ErrSecondFactorNeeded) {
		cookie, err := s.seal(pendingPurpose, pending{Issuer: id, User: u.ID, Expires: s.p.Now().Add(PendingTTL).Unix()})
		return Result{Pending: cookie}, err
	}
	return Result{Opened: opened}, err
}

// account returns the user linked to (issuer, subject). Without a link it
// links the account with the token's address when the issuer vouches for
// the address, or creates one (just in time: the role is mapped). A linked
// user whose mapped role changed gets the new role (which ends their
// sessions, as any role change does).
func (s *Service) account(ctx context.Context, id string, c Claims, role string, src signin.Source) (store.User, error) {
	link, err := store.OIDCLinkBySubject(ctx, s.p.DB, id, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return s.linkOrCreate(ctx, id, c, role, src)
	}
	if err != nil {
		return store.User{}, err
	}
	u, err := s.p.Signin.User(ctx, link.UserID)
	if err != nil || u.Role == role {
		return u, err
	}
	err = s.p.Accounts.SetRole(ctx, accounts.Change{Target: u.ID, Event: audit.Event{ActorID: actorFor(id, c.Subject),
		ActorRole: "oidc", IP: src.IP, UserAgent: src.UserAgent}}, role)
	u.Role = role
	return u, err
}

func (s *Service) linkOrCreate(ctx context.Context, id string, c Claims, role string, src signin.Source) (store.User, error) {
	email := strings.TrimSpace(c.Email)
	if !accounts.ValidEmail(email) {
		return store.User{}, s.refused(ctx, src, id, c.Subject, "no usable email claim", ErrRefused)
	}
	ev := audit.Event{ActorID: actorFor(id, c.Subject), ActorRole: "oidc", ResourceType: "user",
		Outcome: audit.Success, IP: src.IP, UserAgent: src.UserAgent}
	var u store.User
	err := s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		existing, err := store.UserByEmail(ctx, tx, email)
		switch {
		case err == nil && !c.EmailVerified:
			return ErrEmailTaken
		case err == nil:
			u = existing
			ev.Action, ev.Reason = ActionLink, "existing account, email verified by "+id
		case errors.Is(err, store.ErrNotFound):
			name := c.Name
			if len(name) > accounts.MaxName {
				name = name[:accounts.MaxName]
			}
			if u, err = store.CreateUser(ctx, tx, email, name, role); err != nil {
				return err
			}
			ev.Action, ev.Reason = accounts.ActionCreate, "just in time from "+id+", role "+role
		default:
			return err
		}
		ev.ResourceID = string(u.ID)
		return store.CreateOIDCLink(ctx, tx, store.OIDCLink{Issuer: id, Subject: c.Subject, UserID: u.ID}, s.p.Now())
	})
	if errors.Is(err, ErrEmailTaken) || errors.Is(err, store.ErrConflict) {
		return store.User{}, s.refused(ctx, src, id, c.Subject, "account with this email not linkable", ErrEmailTaken)
	}
	if err != nil {
		return store.User{}, err
	}
	if u.Role != role {
		// A linked existing account takes the mapped role too.
		return s.account(ctx, id, c, role, src)
	}
	return u, nil
}
