package signin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Passkeys (WebAuthn, docs/DESIGN.md decision 8) through
// github.com/go-webauthn/webauthn: a staff user registers several, names
// and removes them; a passkey is a second factor after the password, or —
// with user verification (PIN or biometric) on the authenticator — a
// sign-in on its own. The ceremony's state (challenge, expected user
// verification) stays in PostgreSQL, found by the hash of a random token
// the browser holds in a cookie, used once and for CeremonyTTL at most.

// Audit actions of passkeys.
const (
	ActionPasskeyAdd    = "passkey.register"
	ActionPasskeyRename = "passkey.rename"
	ActionPasskeyRemove = "passkey.remove"
)

// Passkey limits.
const (
	// CeremonyTTL bounds the time between a ceremony's options and its
	// answer.
	CeremonyTTL = 2 * time.Minute
	// MaxPasskeyName bounds a passkey's name (runes are counted as bytes).
	MaxPasskeyName = 64
	// MaxCeremony bounds the ceremony token; MaxCredential the
	// authenticator's JSON answer.
	MaxCeremony   = 64
	MaxCredential = 16 << 10
	// MaxPasskeys bounds the passkeys of one user.
	MaxPasskeys = 20
)

var (
	// ErrPasskeysOff: the relying party could not be configured (a
	// public_url without a host).
	ErrPasskeysOff = errors.New("signin: passkeys unavailable")
	// ErrCeremony: the ceremony is unknown, expired, used or not this
	// session's, or the authenticator's answer does not verify.
	ErrCeremony = errors.New("signin: passkey ceremony failed")
	// ErrPasskeyName: a name empty, too long or with control characters.
	ErrPasskeyName = errors.New("signin: bad passkey name")
	// ErrTooManyPasskeys: the user has MaxPasskeys already.
	ErrTooManyPasskeys = errors.New("signin: too many passkeys")
)

// PasskeyParams are the relying party: its ID (the host of public_url:
// a passkey works only for the host it was made for) and the origins
// browsers send.
type PasskeyParams struct {
	RPID, DisplayName string
	Origins           []string
}

func newRelyingParty(p PasskeyParams) (*webauthn.WebAuthn, error) {
	if p.RPID == "" || len(p.Origins) == 0 {
		return nil, ErrPasskeysOff
	}
	if p.DisplayName == "" {
		p.DisplayName = "OpenVisit"
	}
	return webauthn.New(&webauthn.Config{RPID: p.RPID, RPDisplayName: p.DisplayName, RPOrigins: p.Origins})
}

// waUser is a staff user as the WebAuthn library sees them. The user
// handle is the user's UUID: opaque, stable, and no personal data.
type waUser struct {
	u     store.User
	creds []store.Passkey
}

func (w waUser) WebAuthnID() []byte {
	id, _ := uuid.Parse(string(w.u.ID))
	return id[:]
}
func (w waUser) WebAuthnName() string        { return w.u.Email }
func (w waUser) WebAuthnDisplayName() string { return w.u.Name }
func (w waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(w.creds))
	for i, p := range w.creds {
		out[i] = toCredential(p)
	}
	return out
}

func toCredential(p store.Passkey) webauthn.Credential {
	tr := make([]protocol.AuthenticatorTransport, len(p.Transports))
	for i, t := range p.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{ID: p.CredentialID, PublicKey: p.PublicKey, AttestationType: p.AttestationType, Transport: tr,
		Flags: webauthn.CredentialFlags{UserPresent: p.UserPresent, UserVerified: p.UserVerified,
			BackupEligible: p.BackupEligible, BackupState: p.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount, CloneWarning: p.CloneWarning,
			Attachment: protocol.AuthenticatorAttachment(p.Attachment)}}
}

func (s *Service) loadWAUser(ctx context.Context, db store.DBTX, id ids.UserID) (waUser, error) {
	u, err := store.UserByID(ctx, db, id, false)
	if err != nil {
		return waUser{}, err
	}
	creds, err := store.Passkeys(ctx, db, id)
	return waUser{u: u, creds: creds}, err
}

// Ceremony is the options for the browser's navigator.credentials call
// (JSON, as the library makes it) and the token the browser keeps in a
// cookie until it answers.
type Ceremony struct {
	Options json.RawMessage
	Token   string
}

func (s *Service) saveCeremony(ctx context.Context, c store.Ceremony, options any, data *webauthn.SessionData) (Ceremony, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, err
	}
	if c.Data, err = json.Marshal(data); err != nil {
		return Ceremony{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Ceremony{}, err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	now := s.p.Now()
	c.TokenHash, c.ExpiresAt = ceremonyHash(tok), now.Add(CeremonyTTL)
	if err := store.SaveCeremony(ctx, s.p.DB, c, now); err != nil {
		return Ceremony{}, err
	}
	return Ceremony{Options: opts, Token: tok}, nil
}

func ceremonyHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// takeCeremony uses up the ceremony of purpose whose token is tok.
func (s *Service) takeCeremony(ctx context.Context, db store.DBTX, tok, purpose string) (store.Ceremony, webauthn.SessionData, error) {
	var data webauthn.SessionData
	if tok == "" || len(tok) > MaxCeremony {
		return store.Ceremony{}, data, ErrCeremony
	}
	c, err := store.TakeCeremony(ctx, db, ceremonyHash(tok), purpose, s.p.Now())
	if errors.Is(err, store.ErrNotFound) {
		return c, data, ErrCeremony
	}
	if err != nil {
		return c, data, err
	}
	if err := json.Unmarshal(c.Data, &data); err != nil {
		return c, data, fmt.Errorf("signin: ceremony data: %w", err)
	}
	return c, data, nil
}

// BeginRegistration starts adding a passkey for the signed-in user whose
// staff session hashes to sessionHash. The passkey is discoverable (it can
// sign in without an address) and may not be one the user has already.
func (s *Service) BeginRegistration(ctx context.Context, user ids.UserID, sessionHash []byte) (Ceremony, error) {
	if s.rp == nil {
		return Ceremony{}, ErrPasskeysOff
	}
	wu, err := s.loadWAUser(ctx, s.p.DB, user)
	if err != nil {
		return Ceremony{}, err
	}
	if len(wu.creds) >= MaxPasskeys {
		return Ceremony{}, ErrTooManyPasskeys
	}
	creation, data, err := s.rp.BeginRegistration(wu,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred}),
		webauthn.WithExclusions(webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()))
	if err != nil {
		return Ceremony{}, fmt.Errorf("signin: begin registration: %w", err)
	}
	return s.saveCeremony(ctx, store.Ceremony{Purpose: store.CeremonyRegister, UserID: user, SessionHash: sessionHash}, creation, data)
}

// Registration is the browser's answer to BeginRegistration.
type Registration struct {
	User        ids.UserID
	SessionHash []byte
	Ceremony    string
	Name        string
	Credential  []byte // the PublicKeyCredential as JSON
	Event       audit.Event
}

// FinishRegistration verifies the authenticator's answer and stores the
// passkey under its name, audited, in one transaction.
func (s *Service) FinishRegistration(ctx context.Context, r Registration) (store.Passkey, error) {
	if s.rp == nil {
		return store.Passkey{}, ErrPasskeysOff
	}
	name, err := passkeyName(r.Name)
	if err != nil {
		return store.Passkey{}, err
	}
	if len(r.Credential) == 0 || len(r.Credential) > MaxCredential {
		return store.Passkey{}, ErrCeremony
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(r.Credential)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	var pk store.Passkey
	ev := r.Event
	ev.Action, ev.ResourceType, ev.Outcome = ActionPasskeyAdd, "passkey", audit.Success
	err = s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		c, data, err := s.takeCeremony(ctx, tx, r.Ceremony, store.CeremonyRegister)
		if err != nil {
			return err
		}
		if c.UserID != r.User || !bytes.Equal(c.SessionHash, r.SessionHash) {
			return ErrCeremony
		}
		wu, err := s.loadWAUser(ctx, tx, r.User)
		if err != nil {
			return err
		}
		cred, err := s.rp.CreateCredential(wu, data, parsed)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCeremony, err)
		}
		pk = fromCredential(r.User, cred, name, s.p.Now())
		if pk.ID, err = store.AddPasskey(ctx, tx, pk); err != nil {
			return err
		}
		ev.ResourceID = pk.ID
		return nil
	})
	return pk, err
}

func fromCredential(user ids.UserID, c *webauthn.Credential, name string, now time.Time) store.Passkey {
	tr := make([]string, len(c.Transport))
	for i, t := range c.Transport {
		tr[i] = string(t)
	}
	return store.Passkey{UserID: user, CredentialID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType,
		AAGUID: c.Authenticator.AAGUID, SignCount: c.Authenticator.SignCount, Transports: tr,
		Attachment: string(c.Authenticator.Attachment), UserPresent: c.Flags.UserPresent, UserVerified: c.Flags.UserVerified,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState, Name: name, CreatedAt: now}
}

// passkeyName trims a name and checks it: 1 to MaxPasskeyName bytes of
// UTF-8 without control characters.
func passkeyName(n string) (string, error) {
	n = strings.TrimSpace(n)
	if n == "" || len(n) > MaxPasskeyName || !utf8.ValidString(n) || strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return "", ErrPasskeyName
	}
	return n, nil
}

// Passkeys lists a user's passkeys.
func (s *Service) Passkeys(ctx context.Context, user ids.UserID) ([]store.Passkey, error) {
	return store.Passkeys(ctx, s.p.DB, user)
}

// RenamePasskey gives user's passkey id a new name, audited (ev carries
// the actor).
func (s *Service) RenamePasskey(ctx context.Context, user ids.UserID, id, name string, ev audit.Event) error {
	name, err := passkeyName(name)
	if err != nil {
		return err
	}
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = ActionPasskeyRename, "passkey", id, audit.Success
	return s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error { return store.RenamePasskey(ctx, tx, user, id, name) })
}

// RemovePasskey deletes user's passkey id, audited. The password and TOTP
// (and recovery codes) remain, so removing the last passkey locks no one
// out.
func (s *Service) RemovePasskey(ctx context.Context, user ids.UserID, id string, ev audit.Event) error {
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = ActionPasskeyRemove, "passkey", id, audit.Success
	return s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error { return store.RemovePasskey(ctx, tx, user, id) })
}
