package signin

import (
	"context"
	"errors"
	"strings"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/store"
)

var (
	// ErrSecondFactorNeeded: the identity provider did not assert
	// multi-factor authentication, so the local second factor is asked.
	ErrSecondFactorNeeded = errors.New("signin: local second factor needed")
	// ErrNoSecondFactor: the identity provider did not assert MFA and the
	// account has no local second factor to ask instead.
	ErrNoSecondFactor = errors.New("signin: no second factor")
)

// Federated is a staff sign-in whose first factor an identity provider
// vouched for (internal/sso): the account it is linked to, whether the
// provider asserted multi-factor authentication, and otherwise the local
// second factor (a TOTP code or a recovery code).
type Federated struct {
	User store.User
	// Issuer is the configured issuer's ID, for the audit entry.
	Issuer             string
	MFA                bool
	Code, RecoveryCode string
	IP, UserAgent      string
}

// OpenFederated opens a staff session for f, through the same path as a
// password sign-in (one session policy, one success record): a disabled
// or locked account is refused; without the provider's MFA the local
// second factor is required (ErrSecondFactorNeeded until one is given,
// ErrNoSecondFactor when the account has none), and a wrong one counts
// towards the lock like a wrong code after a password.
func (s *Service) OpenFederated(ctx context.Context, f Federated) (Opened, error) {
	if len(f.Code) > MaxCode || len(f.RecoveryCode) > MaxCode {
		return Opened{}, ErrTooLong
	}
	now := s.p.Now()
	u, err := store.UserByID(ctx, s.p.DB, f.User.ID, false)
	if err != nil {
		return Opened{}, err
	}
	ev := audit.Event{Action: ActionLogin, ResourceType: "user", ResourceID: string(u.ID), ActorID: string(u.ID),
		ActorRole: u.Role, IP: f.IP, UserAgent: f.UserAgent, Reason: "oidc " + f.Issuer}
	state := throttle.State{Failures: u.FailedLogins, Locked: u.LockedAt != nil}
	if u.LastFailedAt != nil {
		state.LastFailure = *u.LastFailedAt
	}
	if ok, retry := throttle.Decide(state, now); !ok {
		return Opened{}, s.throttled(ctx, ev, retry)
	}
	if u.DisabledAt != nil {
		return Opened{}, s.failed(ctx, ev, u, now, true, 0)
	}
	if f.MFA {
		ev.Reason += ", mfa by the identity provider"
		return s.open(ctx, u, ev, 0, "", now)
	}
	if u.MFAEnrolledAt == nil {
		ev.Outcome, ev.Reason = audit.Denied, ev.Reason+": no mfa asserted and no local second factor"
		s.p.Record(ctx, ev)
		return Opened{}, ErrNoSecondFactor
	}
	if strings.TrimSpace(f.Code) == "" && strings.TrimSpace(f.RecoveryCode) == "" {
		return Opened{}, ErrSecondFactorNeeded
	}
	step, ok, recovery, err := s.secondFactor(ctx, ev, u, Attempt{Code: f.Code, RecoveryCode: f.RecoveryCode}, now)
	if err != nil {
		return Opened{}, err
	}
	if !ok {
		return Opened{}, s.failed(ctx, ev, u, now, true, step)
	}
	ev.Reason += ", local second factor"
	if recovery {
		ev.Reason += " (recovery code)"
	}
	return s.open(ctx, u, ev, step, "", now)
}
