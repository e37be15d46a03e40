// Package token mints and verifies join tokens: short-lived, single-use
// credentials that admit one participant to one visit on one SFU node.
//
// A token is two base64url (unpadded) parts joined by a dot: the JSON claims
// and an Ed25519 signature over the exact claim bytes. The SFU verifies with
// the public key alone; single use is enforced by a Burner that remembers the
// token ID (jti) until the token would have expired anyway.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
)

// Role is what a participant may do in a room.
type Role string

const (
	RolePatient  Role = "patient"
	RoleProvider Role = "provider"
	RoleRecorder Role = "recorder"
	// Invitees beside the patient (issue 17): in the room they send and
	// receive like a patient; what they may do outside it is the API's.
	RoleCaregiver   Role = "caregiver"
	RoleInterpreter Role = "interpreter"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RolePatient, RoleProvider, RoleRecorder, RoleCaregiver, RoleInterpreter:
		return true
	}
	return false
}

// MaxLen bounds the encoded size of a token; anything longer is refused
// before decoding.
const MaxLen = 2048

// MaxTTL bounds how long a token may live: join tokens are minted at the
// moment of joining, so minutes are plenty.
const MaxTTL = 10 * time.Minute

// Errors returned by Verify. Callers map them to stable wire codes.
var (
	ErrMalformed    = errors.New("token: malformed")
	ErrBadSignature = errors.New("token: bad signature")
	ErrExpired      = errors.New("token: expired")
	ErrNotYetValid  = errors.New("token: not yet valid")
	ErrWrongVisit   = errors.New("token: wrong visit")
	ErrWrongNode    = errors.New("token: wrong node")
	ErrUsed         = errors.New("token: already used")
	// ErrRevoked: the token is good, but its holder may no longer join
	// (the visit ended, they were removed, their session ended).
	ErrRevoked = errors.New("token: access revoked")
	// ErrUnavailable: the node cannot check revocations now (its database
	// is unreachable, or its re-check is stale), so it admits no one.
	ErrUnavailable = errors.New("token: cannot be checked now")
)

// Claims is what a join token asserts. Field names are short because the
// token travels in every join message.
type Claims struct {
	Version     int               `json:"v"`
	ID          string            `json:"jti"`
	Visit       ids.VisitID       `json:"vid"`
	Participant ids.ParticipantID `json:"pid"`
	Role        Role              `json:"role"`
	// Subject is the user or invite behind the participant (opaque ID), so
	// that revoking a user can find their participants.
	Subject   string     `json:"sub,omitempty"`
	Node      ids.NodeID `json:"node"`
	IssuedAt  int64      `json:"iat"`
	ExpiresAt int64      `json:"exp"`
}

// Expiry returns the expiry as a time.
func (c Claims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0) }

// Minter signs tokens with an Ed25519 private key.
type Minter struct {
	key ed25519.PrivateKey
	ttl time.Duration
	now func() time.Time
}

// NewMinter returns a Minter whose tokens live for ttl (at most MaxTTL).
// now may be nil for the wall clock.
func NewMinter(key ed25519.PrivateKey, ttl time.Duration, now func() time.Time) (*Minter, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("token: signing key has the wrong size")
	}
	if ttl <= 0 || ttl > MaxTTL {
		return nil, fmt.Errorf("token: ttl %s out of range (0, %s]", ttl, MaxTTL)
	}
	if now == nil {
		now = time.Now
	}
	return &Minter{key: key, ttl: ttl, now: now}, nil
}

// Grant names who a token admits, and where.
type Grant struct {
	Visit       ids.VisitID
	Participant ids.ParticipantID
	Role        Role
	Subject     string
	Node        ids.NodeID
}

// Mint returns a signed token for g and the claims it carries.
func (m *Minter) Mint(g Grant) (string, Claims, error) {
	if !g.Role.Valid() {
		return "", Claims{}, fmt.Errorf("token: mint: unknown role %q", g.Role)
	}
	if g.Visit == "" || g.Participant == "" || g.Node == "" {
		return "", Claims{}, errors.New("token: mint: visit, participant and node are required")
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", Claims{}, fmt.Errorf("token: mint: %w", err)
	}
	now := m.now()
	c := Claims{
		Version:     1,
		ID:          base64.RawURLEncoding.EncodeToString(jti[:]),
		Visit:       g.Visit,
		Participant: g.Participant,
		Role:        g.Role,
		Subject:     g.Subject,
		Node:        g.Node,
		IssuedAt:    now.Unix(),
		ExpiresAt:   now.Add(m.ttl).Unix(),
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: mint: %w", err)
	}
	sig := ed25519.Sign(m.key, payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(sig), c, nil
}

// Verifier checks tokens with an Ed25519 public key. It does not burn them:
// see Burner.
type Verifier struct {
	pub  ed25519.PublicKey
	node ids.NodeID
	now  func() time.Time
	// skew tolerates small clock differences between control plane and node.
	skew time.Duration
}

// NewVerifier returns a Verifier that accepts tokens for node only. now may
// be nil for the wall clock.
func NewVerifier(pub ed25519.PublicKey, node ids.NodeID, now func() time.Time) (*Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("token: public key has the wrong size")
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{pub: pub, node: node, now: now, skew: 30 * time.Second}, nil
}

// Parse decodes and checks the signature and shape of tok, but not its
// times, visit or node. It never panics on hostile input.
func (v *Verifier) Parse(tok string) (Claims, error) {
	var c Claims
	if len(tok) == 0 || len(tok) > MaxLen {
		return c, ErrMalformed
	}
	p, s, ok := strings.Cut(tok, ".")
	if !ok || strings.Contains(s, ".") {
		return c, ErrMalformed
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return c, ErrMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return c, ErrMalformed
	}
	if !ed25519.Verify(v.pub, payload, sig) {
		return c, ErrBadSignature
	}
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Claims{}, ErrMalformed
	}
	if c.Version != 1 || c.ID == "" || c.Visit == "" || c.Participant == "" || !c.Role.Valid() || c.Node == "" {
		return Claims{}, ErrMalformed
	}
	return c, nil
}

// Verify checks tok fully: signature, validity window, node, and that it
// admits to visit. It does not burn the token.
func (v *Verifier) Verify(tok string, visit ids.VisitID) (Claims, error) {
	c, err := v.Parse(tok)
	if err != nil {
		return Claims{}, err
	}
	now := v.now()
	if now.After(time.Unix(c.ExpiresAt, 0).Add(v.skew)) {
		return Claims{}, ErrExpired
	}
	if now.Add(v.skew).Before(time.Unix(c.IssuedAt, 0)) {
		return Claims{}, ErrNotYetValid
	}
	if c.ExpiresAt-c.IssuedAt > int64(MaxTTL/time.Second) {
		return Claims{}, ErrMalformed
	}
	if c.Node != v.node {
		return Claims{}, ErrWrongNode
	}
	if visit != "" && c.Visit != visit {
		return Claims{}, ErrWrongVisit
	}
	return c, nil
}
