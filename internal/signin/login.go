package signin

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/password"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/store"
)

// Attempt is a staff sign-in: an address, a password and a second factor:
// a TOTP code, a recovery code, or a passkey's answer (Passkey, the
// PublicKeyCredential as JSON) to the ceremony whose token is Ceremony.
type Attempt struct {
	Email, Password, Code, RecoveryCode string
	Passkey                             []byte
	Ceremony                            string
	IP, UserAgent                       string
}

// Opened is a successful sign-in: the user and their new session, whose
// token goes in the cookie (only its hash is stored).
type Opened struct {
	User  store.User
	Token string
	Hash  []byte
}

// Login checks a and opens a staff session. Every refusal is
// ErrBadCredentials (a *ThrottledError when it came too soon), audited, and
// counted towards the account's lock; ErrTooLong refuses a field over its
// limit unchecked.
func (s *Service) Login(ctx context.Context, a Attempt) (Opened, error) {
	if len(a.Email) > MaxEmail || len(a.Password) > MaxPassword || len(a.Code) > MaxCode || len(a.RecoveryCode) > MaxCode ||
		len(a.Passkey) > MaxCredential || len(a.Ceremony) > MaxCeremony {
		return Opened{}, ErrTooLong
	}
	now := s.p.Now()
	ev := audit.Event{Action: ActionLogin, ResourceType: "user", IP: a.IP, UserAgent: a.UserAgent}
	user, err := store.UserByEmail(ctx, s.p.DB, a.Email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && user.PasswordHash == "") {
		return Opened{}, s.unknownAccount(ctx, ev, a.Email, now, "unknown account")
	}
	if err == nil && s.p.PasswordAllowed != nil && !s.p.PasswordAllowed(user) {
		// Passwords are off for this account (it signs in through the
		// clinic's identity provider): the same answer as an unknown one.
		ev.ActorID, ev.ActorRole, ev.ResourceID = string(user.ID), user.Role, string(user.ID)
		return Opened{}, s.unknownAccount(ctx, ev, a.Email, now, "local passwords off")
	}
	if err != nil {
		return Opened{}, err
	}
	ev.ActorID, ev.ActorRole, ev.ResourceID = string(user.ID), user.Role, string(user.ID)
	state := throttle.State{Failures: user.FailedLogins, Locked: user.LockedAt != nil}
	if user.LastFailedAt != nil {
		state.LastFailure = *user.LastFailedAt
	}
	if ok, retry := throttle.Decide(state, now); !ok {
		return Opened{}, s.throttled(ctx, ev, retry)
	}

	release := s.hashSlot()
	pwOK, rehash, err := password.Verify(user.PasswordHash, a.Password)
	release()
	if err != nil {
		return Opened{}, err
	}
	step, factorOK, usedRecovery := int64(0), false, false
	if pwOK && user.DisabledAt == nil && user.MFAEnrolledAt != nil {
		if step, factorOK, usedRecovery, err = s.secondFactor(ctx, ev, user, a, now); err != nil {
			return Opened{}, err
		}
	}
	if !pwOK || !factorOK || user.DisabledAt != nil {
		return Opened{}, s.failed(ctx, ev, user, now, pwOK, step)
	}
	newHash := ""
	if rehash {
		if newHash, err = password.Hash(a.Password, password.DefaultParams); err != nil {
			return Opened{}, err
		}
	}
	switch {
	case usedRecovery:
		ev.Reason = "recovery code"
	case len(a.Passkey) > 0:
		ev.Reason = "passkey second factor"
	}
	return s.open(ctx, user, ev, step, newHash, now)
}

// unknownAccount refuses a sign-in to an address with no account (or none
// set up) after the same work, with the same answer and the same
// throttling as a real account, so the answers do not tell them apart.
func (s *Service) unknownAccount(ctx context.Context, ev audit.Event, email string, now time.Time, reason string) error {
	key := store.NormalizeEmail(email)
	if ok, retry := throttle.Decide(s.unknown.get(key), now); !ok {
		return s.throttled(ctx, ev, retry)
	}
	release := s.hashSlot()
	password.DummyVerify()
	release()
	s.unknown.fail(key, now)
	ev.Outcome, ev.Reason = audit.Failure, reason
	s.p.Record(ctx, ev)
	return ErrBadCredentials
}

func (s *Service) throttled(ctx context.Context, ev audit.Event, retry time.Duration) error {
	ev.Outcome, ev.Reason = audit.Denied, "throttled"
	s.p.Record(ctx, ev)
	return &ThrottledError{Retry: retry}
}

// open records a successful sign-in of u (its time, the TOTP step used, a
// new password hash when the parameters changed) and opens a staff
// session, with the audit entry ev, in one transaction. It is the one
// place a staff session starts, whatever the way in (password, passkey,
// the clinic's identity provider).
func (s *Service) open(ctx context.Context, u store.User, ev audit.Event, step int64, newHash string, now time.Time) (Opened, error) {
	plain, hash, err := session.NewToken()
	if err != nil {
		return Opened{}, err
	}
	ev.Outcome = audit.Success
	err = s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		if err := store.RecordLoginSuccess(ctx, tx, u.ID, step, newHash, now); err != nil {
			return err
		}
		return store.CreateSession(ctx, tx, store.NewSession{
			IDHash: hash, Kind: store.SessionStaff, UserID: u.ID, Now: now, IP: ev.IP, UserAgent: ev.UserAgent,
		})
	})
	if err != nil {
		return Opened{}, err
	}
	return Opened{User: u, Token: plain, Hash: hash}, nil
}

// secondFactor validates the passkey's answer, the TOTP code (never a
// step already used) or burns a recovery code. ev is the sign-in's audit entry, whose actor and
// source the recovery code's use is recorded with.
func (s *Service) secondFactor(ctx context.Context, ev audit.Event, u store.User, a Attempt, now time.Time) (step int64, ok, recovery bool, err error) {
	if len(a.Passkey) > 0 {
		ok, err := s.passkeyFactor(ctx, u, a)
		return 0, ok, false, err
	}
	if a.RecoveryCode != "" {
		hashes, err := store.RecoveryCodeHashes(ctx, s.p.DB, u.ID)
		if err != nil {
			return 0, false, false, err
		}
		i, match := totp.MatchRecoveryCode(a.RecoveryCode, hashes)
		if !match {
			return 0, false, false, nil
		}
		used, err := store.UseRecoveryCode(ctx, s.p.DB, u.ID, hashes[i])
		if err == nil && used {
			ev.Action, ev.Outcome = ActionRecoveryUsed, audit.Success
			s.p.Record(ctx, ev)
		}
		return 0, used, true, err
	}
	secret, err := s.p.Sealer.Open(totpPurpose, u.TOTPSecretEnc)
	if err != nil {
		return 0, false, false, err
	}
	step, ok = totp.Validate(string(secret), strings.ReplaceAll(a.Code, " ", ""), now, u.TOTPLastStep)
	return step, ok, false, nil
}

// failed counts a failed sign-in of u, audits it with why, and locks the
// account at the limit (audited, and an alert for the admins).
func (s *Service) failed(ctx context.Context, ev audit.Event, u store.User, now time.Time, pwOK bool, step int64) error {
	if pwOK && step > 0 {
		// The code was right but sign-in failed anyway: still burn the step.
		_ = store.SetTOTPStep(ctx, s.p.DB, u.ID, step)
	}
	n, locked, err := store.RecordLoginFailure(ctx, s.p.DB, u.ID, now, throttle.LockAfter)
	if err != nil {
		return err
	}
	ev.Outcome = audit.Failure
	switch {
	case u.DisabledAt != nil:
		ev.Reason = "account disabled"
	case !pwOK:
		ev.Reason = "wrong password"
	default:
		ev.Reason = "wrong second factor"
	}
	s.p.Record(ctx, ev)
	if locked && u.LockedAt == nil {
		ev.Action, ev.Outcome, ev.Reason = ActionLock, audit.Success, strconv.Itoa(n)+" consecutive failures"
		s.p.Record(ctx, ev)
		if _, err := alerts.Raise(ctx, s.p.DB, alerts.KindAccountLocked, string(u.ID),
			"account locked after "+strconv.Itoa(n)+" failed sign-ins", now); err != nil {
			s.log.Error("raise alert", "err", err)
		}
	}
	return ErrBadCredentials
}
