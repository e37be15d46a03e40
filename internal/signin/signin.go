// Package signin decides who a staff member is. It holds the rules of
// signing in — the password (argon2id, a few hashes at a time), the second
// factor (a TOTP code never accepted twice, a passkey, or a single-use
// recovery code; a passkey with user verification also signs in alone),
// the per-account throttle and the lock after repeated failures, and the
// same answer and the same work for an address with no account — the
// sessions a sign-in opens, that expire and that sign-out ends, and the
// one-time setup link through which a new account (or one whose second
// factor was reset) sets its password and enrols TOTP (setup.go).
//
// It builds on the blocks in internal/auth (password, totp, throttle,
// session) and keeps its data through internal/store. The per-address rate
// limit is the HTTP edge's (signaling).
package signin

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/password"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
)

// Audit actions. Reports and alert rules match on these strings: keep
// them stable.
const (
	ActionLogin         = "auth.login"
	ActionLogout        = "auth.logout"
	ActionLogoutAll     = "auth.logout_all"
	ActionLock          = "auth.lock"
	ActionMFAEnrolBegin = "mfa.enrol.begin"
	ActionMFAEnrol      = "mfa.enrol"
	ActionRecoveryUsed  = "mfa.recovery_code.use"
	ActionSessionExpire = "session.expire"
)

// Input limits of sign-in and setup.
const (
	MaxEmail    = accounts.MaxEmail
	MaxPassword = 4 * password.MaxLength // bytes: up to 128 runes of UTF-8
	MaxCode     = 32
	// MaxLinkSecret bounds a setup link's secret.
	MaxLinkSecret = 64
)

// totpPurpose seals TOTP secrets (keys.Sealer).
const totpPurpose = "totp-secret"

var (
	// ErrBadCredentials is the one answer to every failed sign-in: unknown
	// account, wrong password, wrong or replayed code, disabled or locked,
	// throttled (a *ThrottledError).
	ErrBadCredentials = errors.New("signin: invalid credentials")
	// ErrTooLong: a sign-in field is longer than allowed.
	ErrTooLong = errors.New("signin: input too long")
)

// ThrottledError refuses a sign-in that came too soon after failures; it
// is ErrBadCredentials to the caller, with how long to wait (Retry is
// throttle.Forever for a locked account).
type ThrottledError struct{ Retry time.Duration }

func (e *ThrottledError) Error() string { return "signin: throttled" }

// Is makes a throttled sign-in an ErrBadCredentials.
func (e *ThrottledError) Is(target error) bool { return target == ErrBadCredentials }

// Params configure a Service.
type Params struct {
	store.Env
	Sealer *keys.Sealer // seals TOTP secrets
	// Staff and Patient are the session lifetimes of each kind.
	Staff, Patient session.Policy
	// PasswordAllowed, when set, says whether u may sign in with a local
	// password (config oidc.local_passwords: break-glass admins only).
	PasswordAllowed func(u store.User) bool
	// Record appends an audit entry outside a transaction (refusals,
	// sign-out); it reports its own failures.
	Record func(context.Context, audit.Event)
	// Passkeys is the WebAuthn relying party (passkeys.go).
	Passkeys PasskeyParams
	Logger   *slog.Logger
}

// Service signs staff in and out. Lifecycle: New once per process (it
// remembers throttling of unknown addresses and bounds concurrent password
// hashing); it owns no goroutines and needs no Close.
type Service struct {
	p         Params
	log       *slog.Logger
	unknown   *throttleMemory
	hashSlots chan struct{}
	rp        *webauthn.WebAuthn // nil: passkeys unavailable (ErrPasskeysOff)
}

// New returns a Service.
func New(p Params) *Service {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	s := &Service{p: p, log: p.Logger.With("component", "signin"),
		unknown: newThrottleMemory(100_000), hashSlots: make(chan struct{}, 4)}
	rp, err := newRelyingParty(p.Passkeys)
	if err != nil {
		s.log.Warn("passkeys unavailable", "err", err)
	}
	s.rp = rp
	return s
}

// hashSlot waits for one of a few argon2 slots: each hash costs ~19 MiB and
// tens of milliseconds, so a burst of sign-ins must queue, not exhaust memory.
func (s *Service) hashSlot() (release func()) {
	s.hashSlots <- struct{}{}
	return func() { <-s.hashSlots }
}

// Policy is the session lifetime of a session kind (store.SessionStaff or
// store.SessionPatient).
func (s *Service) Policy(kind string) session.Policy {
	if kind == store.SessionPatient {
		return s.p.Patient
	}
	return s.p.Staff
}
