package sso

import (
	"context"
	"errors"
	"time"

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
// internal/revocation, its calls. An issuer that cannot be reached
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
		for _, l := range links {
			if err := s.sweepOne(ctx, i, cfg, l, cutoff, &rep); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// sweepOne refreshes one link's token, holding the link's row lock so that
// no other process uses the same token meanwhile. It returns only database
// errors.
func (s *Service) sweepOne(ctx context.Context, i *issuer, cfg *oauth2.Config, listed store.OIDCLink, cutoff time.Time, rep *SweepReport) error {
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
			if err := s.deprovision(ctx, l, oauthReason(err)); err != nil {
				return err
			}
			return store.DropOIDCRefreshToken(ctx, tx, l.Issuer, l.Subject)
		case err != nil:
			s.log.Warn("sweep: refresh failed; will retry", "issuer", l.Issuer, "user", l.UserID, "reason", oauthReason(err))
			rep.Failed++
			return nil
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

// deprovision disables l's account through the one disable path (which
// ends sessions and calls, in its own transaction).
func (s *Service) deprovision(ctx context.Context, l store.OIDCLink, reason string) error {
	s.p.Record(ctx, audit.Event{ActorID: sweepActor, ActorRole: "system", Action: ActionSweep, ResourceType: "user",
		ResourceID: string(l.UserID), Outcome: audit.Denied, Reason: "issuer " + l.Issuer + " refused the refresh token: " + reason})
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
