package signin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/password"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/store"
)

// Refusals of a setup link. Any refusal changes nothing and leaves the
// link usable.
var (
	// ErrBadLink: the link is not valid, has expired, or was used.
	ErrBadLink = errors.New("signin: setup link invalid")
	// ErrWeakPassword wraps the password policy's refusal
	// (password.ErrTooShort, ErrTooLong, or too common).
	ErrWeakPassword = errors.New("signin: weak password")
	// ErrNotStarted: the link's enrolment was not begun (no pending
	// secret).
	ErrNotStarted = errors.New("signin: enrolment not started")
	// ErrWrongCode: the first TOTP code did not match the pending secret.
	ErrWrongCode = errors.New("signin: wrong code")
)

// Source is where a request came from, for its audit entry.
type Source struct{ IP, UserAgent string }

// Enrolment is a begun TOTP enrolment, shown on the setup page.
type Enrolment struct {
	User store.User
	Link store.SetupLink
	// Secret is the pending TOTP secret, URI its otpauth URI and QR the
	// URI as a PNG.
	Secret, URI string
	QR          []byte
	// NeedsPassword: the account sets a password too (an invite, or an
	// account without one).
	NeedsPassword bool
}

// BeginSetup checks a setup link and starts TOTP enrolment: a new secret
// waits, sealed, for its first valid code. A reload of the setup page
// shows the same pending secret, so a code already scanned keeps working.
func (s *Service) BeginSetup(ctx context.Context, secret string, src Source) (Enrolment, error) {
	if len(secret) == 0 || len(secret) > MaxLinkSecret {
		return Enrolment{}, ErrBadLink
	}
	link, err := store.SetupLinkBySecret(ctx, s.p.DB, secret, s.p.Now(), false)
	if errors.Is(err, store.ErrNotFound) {
		return Enrolment{}, ErrBadLink
	}
	if err != nil {
		return Enrolment{}, err
	}
	u, err := store.UserByID(ctx, s.p.DB, link.UserID, false)
	if err != nil {
		return Enrolment{}, err
	}
	e := Enrolment{User: u, Link: link, NeedsPassword: link.Purpose == store.PurposeInvite || u.PasswordHash == ""}
	if e.Secret, err = s.pendingSecret(ctx, u); err != nil {
		return Enrolment{}, err
	}
	e.URI = totp.URI(e.Secret, u.Email)
	if e.QR, err = totp.QRPNG(e.URI); err != nil {
		return Enrolment{}, err
	}
	s.p.Record(ctx, audit.Event{ActorID: string(u.ID), ActorRole: u.Role, Action: ActionMFAEnrolBegin,
		ResourceType: "user", ResourceID: string(u.ID), Outcome: audit.Success, Reason: link.Purpose,
		IP: src.IP, UserAgent: src.UserAgent})
	return e, nil
}

// pendingSecret returns u's pending TOTP secret, making and storing one
// when there is none (or it no longer opens).
func (s *Service) pendingSecret(ctx context.Context, u store.User) (string, error) {
	if u.TOTPPendingEnc != nil {
		if b, err := s.p.Sealer.Open(totpPurpose, u.TOTPPendingEnc); err == nil && len(b) > 0 {
			return string(b), nil
		}
	}
	secret, err := totp.NewSecret()
	if err != nil {
		return "", err
	}
	sealed, err := s.p.Sealer.Seal(totpPurpose, []byte(secret))
	if err != nil {
		return "", err
	}
	return secret, store.SetPendingTOTP(ctx, s.p.DB, u.ID, sealed)
}

// Completion finishes a setup link: the password (when the account needs
// one) and the first code of the pending TOTP secret.
type Completion struct {
	Secret, Password, Code string
	Source
}

// CompleteSetup sets the password (for invites) and confirms TOTP with a
// first code, returning the user and their single-use recovery codes, in
// one transaction with its audit entry that also uses up the link.
func (s *Service) CompleteSetup(ctx context.Context, in Completion) (store.User, []string, error) {
	if len(in.Secret) == 0 || len(in.Secret) > MaxLinkSecret || len(in.Password) > MaxPassword || len(in.Code) > MaxCode {
		return store.User{}, nil, ErrBadLink
	}
	now := s.p.Now()
	var codes []string
	var u store.User
	ev := audit.Event{Action: ActionMFAEnrol, ResourceType: "user", Outcome: audit.Success, IP: in.IP, UserAgent: in.UserAgent}
	err := s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		var link store.SetupLink
		var err error
		if u, link, err = consumeLink(ctx, tx, in.Secret, now); err != nil {
			return err
		}
		ev.ActorID, ev.ActorRole, ev.ResourceID, ev.Reason = string(u.ID), u.Role, string(u.ID), link.Purpose
		hash := u.PasswordHash
		if link.Purpose == store.PurposeInvite || hash == "" {
			if err := password.Check(in.Password, u.Email); err != nil {
				return fmt.Errorf("%w: %w", ErrWeakPassword, err)
			}
			if hash, err = password.Hash(in.Password, password.DefaultParams); err != nil {
				return err
			}
		}
		step, err := s.firstCode(u, in.Code, now)
		if err != nil {
			return err
		}
		var hashes [][]byte
		if codes, hashes, err = totp.NewRecoveryCodes(10); err != nil {
			return err
		}
		return store.CompleteSetup(ctx, tx, u.ID, hash, step, hashes, now)
	})
	if err != nil {
		return store.User{}, nil, err
	}
	return u, codes, nil
}

// consumeLink locks the link's user and uses the link up. The user's row
// first, then the link: the order a disable takes, so the two cannot
// deadlock and a disabled user's link never completes (the store refuses
// it).
func consumeLink(ctx context.Context, tx pgx.Tx, secret string, now time.Time) (store.User, store.SetupLink, error) {
	link, err := store.SetupLinkBySecret(ctx, tx, secret, now, false)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, link, ErrBadLink
	}
	if err != nil {
		return store.User{}, link, err
	}
	u, err := store.UserByID(ctx, tx, link.UserID, true)
	if err != nil {
		return u, link, err
	}
	link, err = store.SetupLinkBySecret(ctx, tx, secret, now, true)
	if errors.Is(err, store.ErrNotFound) {
		return u, link, ErrBadLink
	}
	return u, link, err
}

// firstCode checks code against u's pending TOTP secret and returns its
// step.
func (s *Service) firstCode(u store.User, code string, now time.Time) (int64, error) {
	if u.TOTPPendingEnc == nil {
		return 0, ErrNotStarted
	}
	secret, err := s.p.Sealer.Open(totpPurpose, u.TOTPPendingEnc)
	if err != nil {
		return 0, err
	}
	step, ok := totp.Validate(string(secret), strings.ReplaceAll(code, " ", ""), now, 0)
	if !ok {
		return 0, ErrWrongCode
	}
	return step, nil
}
