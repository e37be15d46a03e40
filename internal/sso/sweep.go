package sso

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/store"
)

// sweepActor is the audit actor of the deprovisioning sweep.
const sweepActor = "system:oidc-sweep"

// SweepReport counts what one sweep did.
type SweepReport struct {
	Vouched, Disabled, Failed int
}

// Sweep asks each issuer, with each linked account's refresh token, whether
// it still vouches for the person: every link whose issuer last vouched
// more than olderThan ago (the loop passes half its interval, so no link
// goes unasked for longer than the interval). An issuer that refuses the
// token (invalid_grant: the person was disabled, deleted or signed out
// everywhere there) has deprovisioned the
// person, and the account is disabled — its sessions end and, through
// internal/revocation, its calls. When the refresh returns an ID token,
// its groups are mapped as at sign-in: no mapped group any more disables
// the account too (an admin re-enables it), and another role is given
// (which ends the sessions). An issuer that cannot be reached
// disables no one; the link is asked again next time.
func (s *Service) Sweep(ctx context.Context, olderThan time.Duration) (SweepReport, error) {
	var rep SweepReport
	cutoff := s.p.Now().Add(-olderThan)
	for _, id := range s.order {
		i := s.issuers[id]
		links, err := store.OIDCLinksToSweep(ctx, s.p.DB, id, cutoff)
		if err != nil {
			return rep, err
		}
		if len(links) == 0 {
			continue
		}
		p, err := i.discover(ctx)
		if err != nil {
			s.log.Warn("sweep: issuer unavailable", "issuer", id, "err", err)
			rep.Failed += len(links)
			continue
		}
		cfg := i.oauth2(p, s.redirectURL())
		v := p.Verifier(&oidc.Config{ClientID: i.cfg.ClientID, Now: s.p.Now})
		for _, l := range links {
			if err := s.sweepOne(ctx, i, cfg, v, l, cutoff, &rep); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// sweepOne refreshes one link's token, holding the link's row lock so that
// no other process uses the same token meanwhile. It returns only database
// errors.
func (s *Service) sweepOne(ctx context.Context, i *issuer, cfg *oauth2.Config, v *oidc.IDTokenVerifier, listed store.OIDCLink, cutoff time.Time, rep *SweepReport) error {
	return s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		l, ok, err := store.ClaimOIDCLinkForSweep(ctx, tx, listed.Issuer, listed.Subject, cutoff)
		if err != nil || !ok {
			return err
		}
		purpose := refreshPurpose(l.Issuer, l.Subject)
		rt, err := s.p.Sealer.Open(purpose, l.RefreshTokenEnc)
		if err != nil {
			s.log.Error("sweep: refresh token does not open", "issuer", l.Issuer, "user", l.UserID)
			rep.Failed++
			return nil
		}
		rctx, cancel := context.WithTimeout(i.oauthCtx(ctx), 30*time.Second)
		defer cancel()
		tok, err := cfg.TokenSource(rctx, &oauth2.Token{RefreshToken: string(rt), Expiry: time.Unix(1, 0)}).Token()
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode == "invalid_grant":
			// Only invalid_grant says the grant is gone; invalid_client and
			// the like are our configuration, and must not disable everyone.
			rep.Disabled++
			if err := s.deprovision(ctx, l, "refused the refresh token: "+oauthReason(err)); err != nil {
				return err
			}
			return store.DropOIDCRefreshToken(ctx, tx, l.Issuer, l.Subject)
		case err != nil:
			s.log.Warn("sweep: refresh failed; will retry", "issuer", l.Issuer, "user", l.UserID, "reason", oauthReason(err))
			rep.Failed++
			return nil
		}
		if role, ok := s.refreshedRole(ctx, i, v, tok, l.Subject); ok && role == "" {
			// The person is still theirs, but no longer in a group that
			// grants access here: as for a sign-in now, no way in.
			rep.Disabled++
			if err := s.deprovision(ctx, l, "no longer puts the person in a mapped group"); err != nil {
				return err
			}
			return store.DropOIDCRefreshToken(ctx, tx, l.Issuer, l.Subject)
		} else if ok {
			if err := s.followRole(ctx, l, role); err != nil {
				return err
			}
		}
		var sealed []byte
		if tok.RefreshToken != "" && tok.RefreshToken != string(rt) {
			if sealed, err = s.p.Sealer.Seal(purpose, []byte(tok.RefreshToken)); err != nil {
				return err
			}
		}
		rep.Vouched++
		return store.RecordOIDCVouch(ctx, tx, l.Issuer, l.Subject, sealed, false, s.p.Now())
	})
}

// refreshedRole reads the ID token a refresh returned, if the issuer sent
// one, and maps its groups to a role ("" for none); ok is false when there
// is nothing to read — no ID token (the issuer vouched for the grant only),
// or one that does not verify as this person's (OpenID Connect Core §12.2:
// same issuer, subject and audience), which is logged and changes nothing.
func (s *Service) refreshedRole(ctx context.Context, i *issuer, v *oidc.IDTokenVerifier, tok *oauth2.Token, subject string) (role string, ok bool) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", false
	}
	unread := func(reason string) (string, bool) {
		s.log.Warn("sweep: refreshed ID token not read; groups not checked", "issuer", i.cfg.ID, "reason", reason)
		return "", false
	}
	idt, err := v.Verify(i.ctx(ctx), raw)
	if err != nil {
		return unread("does not verify")
	}
	if idt.Subject != subject {
		return unread("another subject")
	}
	var m map[string]json.RawMessage
	if idt.Claims(&m) != nil {
		return unread("claims unreadable")
	}
	c, err := claimsFrom(m, i.cfg.GroupsClaim)
	if err != nil {
		return unread("claims malformed")
	}
	return RoleFor(i.cfg, c.Groups), true
}

// followRole gives l's account the role its groups now map to, as the next
// sign-in would (a role change ends the account's sessions).
func (s *Service) followRole(ctx context.Context, l store.OIDCLink, role string) error {
	u, err := s.p.Signin.User(ctx, l.UserID)
	if err != nil || u.Role == role || u.DisabledAt != nil {
		return err
	}
	return s.p.Accounts.SetRole(ctx, accounts.Change{Target: u.ID, Event: audit.Event{ActorID: sweepActor, ActorRole: "system",
		Reason: "groups at identity provider " + l.Issuer}}, role)
}

// deprovision disables l's account through the one disable path (which
// ends sessions and calls, in its own transaction).
func (s *Service) deprovision(ctx context.Context, l store.OIDCLink, reason string) error {
	s.p.Record(ctx, audit.Event{ActorID: sweepActor, ActorRole: "system", Action: ActionSweep, ResourceType: "user",
		ResourceID: string(l.UserID), Outcome: audit.Denied, Reason: "issuer " + l.Issuer + " " + reason})
	return s.p.Accounts.Disable(ctx, accounts.Change{Target: l.UserID, Event: audit.Event{ActorID: sweepActor, ActorRole: "system",
		Reason: "identity provider " + l.Issuer + " no longer vouches"}})
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rep, err := s.Sweep(ctx, interval/2)
			if err != nil && ctx.Err() == nil {
				s.log.Error("sweep", "err", err)
			}
			if rep.Disabled+rep.Failed > 0 {
				s.log.Info("sweep", "vouched", rep.Vouched, "disabled", rep.Disabled, "failed", rep.Failed)
			}
		}
	}
}
