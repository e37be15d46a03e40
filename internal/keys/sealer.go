// Package keys holds OpenVisit's server-side keys. Sealer encrypts small
// secrets at rest (TOTP secrets) with AES-256-GCM under the server secret
// key; the recording key-encryption keys join it with the recording work.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOpen is returned when sealed data does not authenticate.
var ErrOpen = errors.New("keys: sealed data does not authenticate")

// Sealer seals and opens small secrets. Purpose strings bind a ciphertext
// to its use (a TOTP secret cannot be replayed as something else).
type Sealer struct {
	aead cipher.AEAD
	mac  []byte // a separate key derived for HMACs (CSRF tokens)
}

// NewSealer derives the sealing and MAC keys from a 32-byte secret.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) != 32 {
		return nil, errors.New("keys: server secret must be 32 bytes")
	}
	encKey := derive(secret, "openvisit seal v1")
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return &Sealer{aead: aead, mac: derive(secret, "openvisit mac v1")}, nil
}

func derive(secret []byte, label string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(label))
	return h.Sum(nil)
}

// Seal encrypts plaintext for purpose.
func (s *Sealer) Seal(purpose string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(purpose)), nil
}

// Open decrypts what Seal produced for the same purpose.
func (s *Sealer) Open(purpose string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// MACKey returns the derived key for HMACs (e.g. CSRF tokens).
func (s *Sealer) MACKey() []byte { return s.mac }

// LoadSecret reads a 32-byte secret stored as base64. With create, a
// missing file is generated (mode 0600) — development only.
func LoadSecret(path string, create bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("keys: generate secret: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("keys: write secret: %w", err)
		}
		return secret, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: read secret: %w", err)
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) != 32 {
		return nil, errors.New("keys: secret file must hold base64 of 32 bytes")
	}
	return secret, nil
}
