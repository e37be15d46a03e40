package phi

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A sealed value (version 1):
//
//	0x01 || data key ID (be32) || nonce (12 random bytes) || AES-256-GCM(data key, nonce, value, ad)
//	ad = "openvisit.phi.v1" || 0x00 || table || 0x00 || column || 0x00 || row ID || 0x00 || the first 5 bytes
//
// The associated data binds the value to the table, column and row it was
// written for, and to the key ID in its own header: a ciphertext copied to
// another row or column, or relabelled with another key, does not open.

const (
	version   = 0x01
	headerLen = 1 + 4
	nonceLen  = 12
	// Overhead is what sealing adds to a value's length.
	Overhead = headerLen + nonceLen + 16
	adLabel  = "openvisit.phi.v1"
)

// Errors of the cipher. None of them carries a value.
var (
	// ErrOpen: the ciphertext does not authenticate for this table, column
	// and row (moved, altered, or sealed under another key).
	ErrOpen = errors.New("phi: ciphertext does not authenticate for this field and row")
	// ErrNotEncrypted: the column is not declared encrypted (a bug).
	ErrNotEncrypted = errors.New("phi: column is not declared encrypted")
)

// Params configure a Cipher.
type Params struct {
	// DB is the pool data keys are read from and created in.
	DB DBTX
	// Keyring wraps and unwraps data keys (the recording keyring).
	Keyring KeyringSource
	// Now picks the data-key period of new values; nil: time.Now.
	Now func() time.Time
}

// Cipher seals and opens PHI fields and computes blind indexes. It caches
// unwrapped data keys for its lifetime and is safe for concurrent use. A
// nil *Cipher refuses everything with ErrNoKeyring.
type Cipher struct {
	ks *keyStore
}

// New returns a Cipher.
func New(p Params) *Cipher {
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Cipher{ks: newKeyStore(p.DB, p.Keyring, p.Now)}
}

func associated(col Column, rowID string, header []byte) []byte {
	ad := make([]byte, 0, len(adLabel)+len(col.Table)+len(col.Column)+len(rowID)+4+len(header))
	ad = append(ad, adLabel...)
	for _, s := range []string{col.Table, col.Column, rowID} {
		ad = append(ad, 0)
		ad = append(ad, s...)
	}
	ad = append(ad, 0)
	return append(ad, header...)
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("phi: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts value for col of row rowID under the current period's data
// key of col's table.
func (c *Cipher) Seal(ctx context.Context, col Column, rowID string, value []byte) ([]byte, error) {
	if c == nil {
		return nil, ErrNoKeyring
	}
	if !col.Encrypted() {
		return nil, fmt.Errorf("%w: %s.%s", ErrNotEncrypted, col.Table, col.Column)
	}
	k, err := c.ks.current(ctx, col.Table, period(c.ks.now()))
	if err != nil {
		return nil, err
	}
	a, err := gcm(k.key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen+nonceLen, Overhead+len(value))
	out[0] = version
	binary.BigEndian.PutUint32(out[1:headerLen], uint32(k.id))
	if _, err := rand.Read(out[headerLen:]); err != nil {
		return nil, fmt.Errorf("phi: nonce: %w", err)
	}
	return a.Seal(out, out[headerLen:], value, associated(col, rowID, out[:headerLen])), nil
}

// SealString is Seal of a string.
func (c *Cipher) SealString(ctx context.Context, col Column, rowID, value string) ([]byte, error) {
	return c.Seal(ctx, col, rowID, []byte(value))
}

// Open decrypts a value Seal made for col of row rowID.
func (c *Cipher) Open(ctx context.Context, col Column, rowID string, sealed []byte) ([]byte, error) {
	if c == nil {
		return nil, ErrNoKeyring
	}
	if len(sealed) < Overhead || sealed[0] != version {
		return nil, ErrOpen
	}
	key, err := c.ks.byKeyID(ctx, int32(binary.BigEndian.Uint32(sealed[1:headerLen])))
	if err != nil {
		return nil, err
	}
	a, err := gcm(key)
	if err != nil {
		return nil, err
	}
	out, err := a.Open(nil, sealed[headerLen:headerLen+nonceLen], sealed[headerLen+nonceLen:], associated(col, rowID, sealed[:headerLen]))
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// OpenString is Open of a string.
func (c *Cipher) OpenString(ctx context.Context, col Column, rowID string, sealed []byte) (string, error) {
	b, err := c.Open(ctx, col, rowID, sealed)
	return string(b), err
}

// Read returns a field as stored during the migration: the ciphertext's
// value when there is one, else the plaintext column's (a row the
// migration job has not reached yet), else "".
func (c *Cipher) Read(ctx context.Context, col Column, rowID string, sealed []byte, plain *string) (string, error) {
	if sealed != nil {
		return c.OpenString(ctx, col, rowID, sealed)
	}
	if plain != nil {
		return *plain, nil
	}
	return "", nil
}
