package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openvisit/openvisit/internal/audit/anchor"
)

// HeadPrefix is where head anchors are written in the anchor bucket. Keys
// are HeadPrefix + 20-digit seq + "-" + 16-digit signed_at (µs) + ".json",
// so that S3's key order is seq order: a reader lists only what is new with
// StartAfter, and verify reads them in chain order.
const HeadPrefix = "audit/heads/"

// maxHeadHashes bounds the entry hashes one head anchor carries (32 KiB
// raw, under anchor.MaxBody once base64-encoded). An interval with more
// writes lists its last maxHeadHashes entries; the earlier ones are pinned
// through the chain by the head alone.
const maxHeadHashes = 1024

// The message an Ed25519 head-anchor signature covers:
//
//	f("openvisit.audit.head.v1") || be64(seq) || f(head_hash) || be64(signed_at_us)
//	|| be64(from_seq) || f(hash(from_seq) || … || hash(seq))
const headTag = "openvisit.audit.head.v1"

// HeadAnchor is a signed statement, written to the write-once bucket a few
// seconds after entries reach the chain, that entries FromSeq..Seq had the
// hashes Hashes (the last one is HeadHash, the chain head at Seq). It is
// signed with the checkpoint key: a signed checkpoint pins the chain every
// checkpoint_interval, a head anchor pins each interval's new entries in
// between, one object per interval with writes.
type HeadAnchor struct {
	Checkpoint          // Seq, HeadHash, SignedAt, KeyID, Signature
	FromSeq    int64    // the first entry listed in Hashes
	Hashes     [][]byte // entry hashes FromSeq..Seq
}

func (h *HeadAnchor) message() []byte {
	b := appendField(nil, headTag)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Seq))
	b = appendBytesField(b, h.HeadHash)
	b = binary.BigEndian.AppendUint64(b, uint64(h.SignedAt.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(h.FromSeq))
	return appendBytesField(b, bytes.Join(h.Hashes, nil))
}

// signHead signs the entries fromSeq..fromSeq+len(hashes)-1, whose last
// hash is the head.
func signHead(key ed25519.PrivateKey, fromSeq int64, hashes [][]byte, at time.Time) HeadAnchor {
	last := len(hashes) - 1
	h := HeadAnchor{
		Checkpoint: Checkpoint{Seq: fromSeq + int64(last), HeadHash: hashes[last],
			SignedAt: at.UTC().Truncate(time.Microsecond), KeyID: KeyID(key.Public().(ed25519.PublicKey))},
		FromSeq: fromSeq,
		Hashes:  hashes,
	}
	h.Signature = ed25519.Sign(key, h.message())
	return h
}

// Valid reports whether h is well formed and carries pub's signature.
func (h *HeadAnchor) Valid(pub ed25519.PublicKey) bool {
	n := h.Seq - h.FromSeq + 1
	if h.FromSeq < 1 || n < 1 || n > maxHeadHashes || int64(len(h.Hashes)) != n ||
		!bytes.Equal(h.Hashes[n-1], h.HeadHash) {
		return false
	}
	for _, x := range h.Hashes {
		if len(x) != HashSize {
			return false
		}
	}
	return len(pub) == ed25519.PublicKeySize && len(h.Signature) == ed25519.SignatureSize &&
		ed25519.Verify(pub, h.message(), h.Signature)
}

// HashAt returns the anchored hash of entry seq, if h lists it.
func (h *HeadAnchor) HashAt(seq int64) ([]byte, bool) {
	if seq < h.FromSeq || seq > h.Seq || seq-h.FromSeq >= int64(len(h.Hashes)) {
		return nil, false
	}
	return h.Hashes[seq-h.FromSeq], true
}

func headKey(h HeadAnchor) string {
	return fmt.Sprintf("%s%020d-%016d.json", HeadPrefix, h.Seq, h.SignedAt.UnixMicro())
}

// headKeyBefore is a StartAfter value that lists every head anchor at seq
// or later.
func headKeyBefore(seq int64) string {
	return fmt.Sprintf("%s%020d", HeadPrefix, max(seq, 0))
}

// headJSON is a head anchor as stored in the bucket.
type headJSON struct {
	Format    string `json:"format"`
	Seq       int64  `json:"seq"`
	HeadHash  string `json:"head_hash"` // hex
	SignedAt  string `json:"signed_at"` // RFC 3339, UTC, microseconds
	KeyID     string `json:"key_id"`
	FromSeq   int64  `json:"from_seq"`
	Hashes    string `json:"hashes"`    // base64 of the concatenated 32-byte hashes
	Signature string `json:"signature"` // base64 (standard, padded)
}

func (h *HeadAnchor) marshal() ([]byte, error) {
	return json.Marshal(headJSON{
		Format: headTag, Seq: h.Seq, HeadHash: hex.EncodeToString(h.HeadHash),
		SignedAt: h.SignedAt.UTC().Format(signedAtLayout), KeyID: h.KeyID, FromSeq: h.FromSeq,
		Hashes:    base64.StdEncoding.EncodeToString(bytes.Join(h.Hashes, nil)),
		Signature: base64.StdEncoding.EncodeToString(h.Signature),
	})
}

// parseHead decodes a bucket object; it checks the shape, not the
// signature (Valid does).
func parseHead(body []byte) (HeadAnchor, error) {
	if len(body) > anchor.MaxBody {
		return HeadAnchor{}, errors.New("object too large")
	}
	var j headJSON
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return HeadAnchor{}, fmt.Errorf("malformed: %w", err)
	}
	if j.Format != headTag {
		return HeadAnchor{}, errors.New("unknown format")
	}
	h := HeadAnchor{Checkpoint: Checkpoint{Seq: j.Seq, KeyID: j.KeyID}, FromSeq: j.FromSeq}
	var err error
	if h.HeadHash, err = hex.DecodeString(j.HeadHash); err != nil {
		return h, errors.New("malformed head_hash")
	}
	if h.SignedAt, err = time.Parse(signedAtLayout, j.SignedAt); err != nil {
		return h, errors.New("malformed signed_at")
	}
	if h.Signature, err = base64.StdEncoding.DecodeString(j.Signature); err != nil {
		return h, errors.New("malformed signature")
	}
	all, err := base64.StdEncoding.DecodeString(j.Hashes)
	if err != nil || len(all)%HashSize != 0 || len(all) == 0 || len(all) > maxHeadHashes*HashSize {
		return h, errors.New("malformed hashes")
	}
	for len(all) > 0 {
		h.Hashes = append(h.Hashes, all[:HashSize:HashSize])
		all = all[HashSize:]
	}
	return h, nil
}
