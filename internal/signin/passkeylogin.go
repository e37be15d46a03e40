package signin

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// BeginAssertion starts a passkey ceremony for the sign-in page: purpose
// store.CeremonySignin (the passkey alone; the authenticator must verify
// the user) or store.CeremonySecondFactor (after the password). Both are
// discoverable — the options name no account and list no credentials —
// so they tell nobody which addresses exist or have passkeys.
func (s *Service) BeginAssertion(ctx context.Context, purpose string) (Ceremony, error) {
	if s.rp == nil {
		return Ceremony{}, ErrPasskeysOff
	}
	uv := protocol.VerificationRequired
	if purpose == store.CeremonySecondFactor {
		uv = protocol.VerificationPreferred
	} else if purpose != store.CeremonySignin {
		return Ceremony{}, ErrCeremony
	}
	assertion, data, err := s.rp.BeginDiscoverableLogin(webauthn.WithUserVerification(uv))
	if err != nil {
		return Ceremony{}, fmt.Errorf("signin: begin assertion: %w", err)
	}
	return s.saveCeremony(ctx, store.Ceremony{Purpose: purpose}, assertion, data)
}

// PasskeyAttempt is a sign-in with a passkey alone.
type PasskeyAttempt struct {
	Ceremony      string
	Assertion     []byte // the PublicKeyCredential as JSON
	IP, UserAgent string
}

// PasskeyLogin opens a staff session for the owner of the passkey that
// answered the ceremony, with user verification: possession of the
// passkey and the PIN or biometric that unlocked it are the two factors.
// Refusals are ErrBadCredentials, audited, like a password sign-in's; a
// locked or disabled account is refused as there.
func (s *Service) PasskeyLogin(ctx context.Context, a PasskeyAttempt) (Opened, error) {
	if len(a.Ceremony) > MaxCeremony || len(a.Assertion) > MaxCredential {
		return Opened{}, ErrTooLong
	}
	now := s.p.Now()
	ev := audit.Event{Action: ActionLogin, ResourceType: "user", IP: a.IP, UserAgent: a.UserAgent}
	u, err := s.verifyAssertion(ctx, a.Ceremony, store.CeremonySignin, a.Assertion, "")
	if u.ID != "" {
		ev.ActorID, ev.ActorRole, ev.ResourceID = string(u.ID), u.Role, string(u.ID)
	}
	switch {
	case errors.Is(err, ErrCeremony):
		ev.Outcome, ev.Reason = audit.Failure, "passkey did not verify"
		s.p.Record(ctx, ev)
		return Opened{}, ErrBadCredentials
	case err != nil:
		return Opened{}, err
	}
	state := throttle.State{Failures: u.FailedLogins, Locked: u.LockedAt != nil}
	if u.LastFailedAt != nil {
		state.LastFailure = *u.LastFailedAt
	}
	if ok, retry := throttle.Decide(state, now); !ok {
		return Opened{}, s.throttled(ctx, ev, retry)
	}
	if u.DisabledAt != nil || u.MFAEnrolledAt == nil {
		ev.Outcome, ev.Reason = audit.Failure, "account disabled or not set up"
		s.p.Record(ctx, ev)
		return Opened{}, ErrBadCredentials
	}
	ev.Reason = "passkey"
	return s.open(ctx, u, ev, 0, "", now)
}

// verifyAssertion checks the authenticator's answer to the ceremony tok of
// purpose and records the passkey's use (sign count, flags). want, when
// set, is the only user whose passkey may answer (a second factor). Any
// answer that does not verify — unknown ceremony or passkey, another
// user's, a bad signature, a sign count gone backwards (a cloned
// authenticator) — is ErrCeremony; u is set when the passkey is known.
func (s *Service) verifyAssertion(ctx context.Context, tok, purpose string, assertion []byte, want ids.UserID) (store.User, error) {
	if len(assertion) == 0 {
		return store.User{}, ErrCeremony
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(assertion)
	if err != nil {
		return store.User{}, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	_, data, err := s.takeCeremony(ctx, s.p.DB, tok, purpose)
	if err != nil {
		return store.User{}, err
	}
	var wu waUser
	handler := func(_, handle []byte) (webauthn.User, error) {
		id, err := uuid.FromBytes(handle)
		if err != nil || (want != "" && ids.UserID(id.String()) != want) {
			return nil, ErrCeremony
		}
		if wu, err = s.loadWAUser(ctx, s.p.DB, ids.UserID(id.String())); err != nil {
			return nil, err
		}
		return wu, nil
	}
	_, cred, err := s.rp.ValidatePasskeyLogin(handler, data, parsed)
	if err != nil {
		return wu.u, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	pk, err := store.PasskeyByCredentialID(ctx, s.p.DB, cred.ID)
	if err != nil {
		return wu.u, err
	}
	pk.SignCount, pk.CloneWarning = cred.Authenticator.SignCount, cred.Authenticator.CloneWarning
	pk.UserVerified, pk.BackupState = cred.Flags.UserVerified, cred.Flags.BackupState
	if err := store.RecordPasskeyUse(ctx, s.p.DB, pk, s.p.Now()); err != nil {
		return wu.u, err
	}
	if pk.CloneWarning {
		s.log.Warn("passkey sign count went backwards; refused", "user", wu.u.ID, "passkey", pk.ID)
		return wu.u, ErrCeremony
	}
	return wu.u, nil
}

// passkeyFactor is the second factor of a password sign-in given as a
// passkey: ok when it is one of u's passkeys answering the ceremony.
func (s *Service) passkeyFactor(ctx context.Context, u store.User, a Attempt) (bool, error) {
	_, err := s.verifyAssertion(ctx, a.Ceremony, store.CeremonySecondFactor, a.Passkey, u.ID)
	if errors.Is(err, ErrCeremony) {
		return false, nil
	}
	return err == nil, err
}
