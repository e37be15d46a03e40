package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// The canonical encoding of an entry, hashed with SHA-256 (the migration
// 0003_audit_chain.sql computes the same bytes in PostgreSQL, where rows are
// chained on insert):
//
//	f("openvisit.audit.v1") || f(prev_hash) || be64(seq) || be64(at_us)
//	|| f(actor_id) || f(actor_role) || f(action) || f(resource_type)
//	|| f(resource_id) || f(patient_id) || f(visit_id) || f(ip)
//	|| f(user_agent) || f(outcome) || f(reason)
//
// where f(x) = be32(len(x)) || x with text as UTF-8 bytes, be64/be32 are
// big-endian two's complement, and at_us is the timestamp in microseconds
// since 1970-01-01 UTC — the precision PostgreSQL stores, so a value read
// back hashes to what was hashed on insert. The first entry's prev_hash is 32
// zero bytes.
const entryTag = "openvisit.audit.v1"

// HashSize is the length of entry and chain-head hashes.
const HashSize = sha256.Size

var zeroHash = make([]byte, HashSize)

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendBytesField(b, x []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
	return append(b, x...)
}

// AppendCanonical appends the canonical encoding of e (with its Seq and
// PrevHash) to b.
func (e *Entry) AppendCanonical(b []byte) []byte {
	return e.appendCanonicalAt(b, e.Seq)
}

func (e *Entry) appendCanonicalAt(b []byte, seq int64) []byte {
	b = appendField(b, entryTag)
	b = appendBytesField(b, e.PrevHash)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.UnixMicro()))
	for _, s := range [...]string{e.ActorID, e.ActorRole, e.Action, e.ResourceType, e.ResourceID,
		e.PatientID, e.VisitID, e.IP, e.UserAgent, string(e.Outcome), e.Reason} {
		b = appendField(b, s)
	}
	return b
}

// ComputeHash returns the SHA-256 of e's canonical encoding: what e.Hash
// holds for an untouched entry.
func (e *Entry) ComputeHash() []byte {
	sum := sha256.Sum256(e.AppendCanonical(nil))
	return sum[:]
}

// The message an Ed25519 checkpoint signature covers:
//
//	f("openvisit.audit.checkpoint.v1") || be64(seq) || f(head_hash) || be64(signed_at_us)
const checkpointTag = "openvisit.audit.checkpoint.v1"

// Checkpoint is a signed statement that the chain's entry Seq had hash
// HeadHash at SignedAt.
type Checkpoint struct {
	Seq       int64
	HeadHash  []byte
	SignedAt  time.Time // UTC, microseconds
	KeyID     string    // KeyID of the signing key
	Signature []byte
}

func (c *Checkpoint) message() []byte {
	b := appendField(nil, checkpointTag)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = appendBytesField(b, c.HeadHash)
	return binary.BigEndian.AppendUint64(b, uint64(c.SignedAt.UnixMicro()))
}

// signCheckpoint signs (seq, head) at the given time.
func signCheckpoint(key ed25519.PrivateKey, seq int64, head []byte, at time.Time) Checkpoint {
	c := Checkpoint{
		Seq:      seq,
		HeadHash: head,
		SignedAt: at.UTC().Truncate(time.Microsecond),
		KeyID:    KeyID(key.Public().(ed25519.PublicKey)),
	}
	c.Signature = ed25519.Sign(key, c.message())
	return c
}

// Valid reports whether c carries pub's valid signature.
func (c *Checkpoint) Valid(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && len(c.Signature) == ed25519.SignatureSize &&
		len(c.HeadHash) == HashSize && ed25519.Verify(pub, c.message(), c.Signature)
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
