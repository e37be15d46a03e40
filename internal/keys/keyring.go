package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// The recording keyring holds key-encryption keys (KEKs): AES-256 keys, each
// with an ID, one of them primary. Every recording's random data key (DEK)
// is wrapped under the primary KEK; Postgres keeps only the KEK ID and the
// wrapped DEK (FORMAT.md, "Envelope").
//
// Wrapped DEK format (version 1), 61 bytes:
//
//	0x01 || nonce (12 random bytes) || AES-256-GCM(KEK, nonce, DEK, ad) (32 + 16 bytes)
//	ad = "openvisit.dek.v1" || 0x00 || KEK ID || 0x00 || recording ID (lower-case UUID)
//
// The associated data binds a wrapped key to its recording and to the KEK
// named beside it: a wrapped key copied onto another row does not open.
//
// The keyring file is JSON, mode 0600 (KeyringFile). At rest it holds the
// KEKs in the clear: production puts it on a secret mount (a Kubernetes
// Secret, a tmpfs filled by a vault agent) readable only by the service user.
// A KMS is out of scope; Keyring is the seam where one would plug in.

// Keyring errors.
var (
	ErrUnknownKEK = errors.New("keys: unknown key-encryption key")
	ErrRetiredKEK = errors.New("keys: key-encryption key is retired")
	ErrNoPrimary  = errors.New("keys: keyring has no primary key-encryption key")
	ErrUnwrap     = errors.New("keys: wrapped data key does not authenticate")
	ErrKeyring    = errors.New("keys: malformed keyring file")
)

const (
	wrapVersion  = 0x01
	wrapNonceLen = 12
	// WrappedSize is the size of a wrapped 32-byte data key.
	WrappedSize = 1 + wrapNonceLen + 32 + 16
	// DataKeySize is the size of a recording data key.
	DataKeySize = 32
	wrapLabel   = "openvisit.dek.v1"
)

// KEK is one key-encryption key. A retired KEK keeps its ID and dates but
// no key material.
type KEK struct {
	ID        string     `json:"id"`
	Key       []byte     `json:"key,omitempty"` // base64 in JSON; nil once retired
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// KEKInfo describes a KEK without its key material.
type KEKInfo struct {
	ID        string
	CreatedAt time.Time
	RetiredAt *time.Time
	Primary   bool
}

type keyringFile struct {
	Version int    `json:"version"`
	Primary string `json:"primary"`
	Keys    []KEK  `json:"keys"`
}

// Keyring is an in-memory set of KEKs. It is safe for concurrent use.
type Keyring struct {
	mu      sync.RWMutex
	primary string
	keys    []KEK
}

// NewKeyring returns a keyring with one fresh primary KEK.
func NewKeyring(now time.Time) (*Keyring, error) {
	kr := &Keyring{}
	if _, err := kr.Rotate(now); err != nil {
		return nil, err
	}
	return kr, nil
}

func newKEKID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("keys: kek id: %w", err)
	}
	return "kek_" + hex.EncodeToString(b[:]), nil
}

// Rotate adds a fresh KEK and makes it primary; it returns its ID. Older
// KEKs stay for unwrapping until retired.
func (kr *Keyring) Rotate(now time.Time) (string, error) {
	id, err := newKEKID()
	if err != nil {
		return "", err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("keys: generate kek: %w", err)
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.keys = append(kr.keys, KEK{ID: id, Key: key, CreatedAt: now.UTC()})
	kr.primary = id
	return id, nil
}

// Primary returns the primary KEK's ID.
func (kr *Keyring) Primary() string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.primary
}

// List describes every KEK, oldest first.
func (kr *Keyring) List() []KEKInfo {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	out := make([]KEKInfo, 0, len(kr.keys))
	for _, k := range kr.keys {
		out = append(out, KEKInfo{ID: k.ID, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, Primary: k.ID == kr.primary})
	}
	return out
}

// Retire destroys the key material of KEK id. The primary cannot be
// retired; the caller checks first that no stored data key needs it.
func (kr *Keyring) Retire(id string, now time.Time) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if id == kr.primary {
		return errors.New("keys: the primary key-encryption key cannot be retired; rotate first")
	}
	for i := range kr.keys {
		if kr.keys[i].ID == id {
			if kr.keys[i].RetiredAt != nil {
				return ErrRetiredKEK
			}
			clear(kr.keys[i].Key)
			kr.keys[i].Key = nil
			t := now.UTC()
			kr.keys[i].RetiredAt = &t
			return nil
		}
	}
	return ErrUnknownKEK
}

func (kr *Keyring) aead(id string) (cipher.AEAD, error) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	i := slices.IndexFunc(kr.keys, func(k KEK) bool { return k.ID == id })
	if i < 0 {
		return nil, ErrUnknownKEK
	}
	if kr.keys[i].RetiredAt != nil || len(kr.keys[i].Key) != 32 {
		return nil, ErrRetiredKEK
	}
	block, err := aes.NewCipher(kr.keys[i].Key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return cipher.NewGCM(block)
}

func wrapAD(kekID, recordingID string) []byte {
	ad := make([]byte, 0, len(wrapLabel)+2+len(kekID)+len(recordingID))
	ad = append(ad, wrapLabel...)
	ad = append(ad, 0)
	ad = append(ad, kekID...)
	ad = append(ad, 0)
	return append(ad, recordingID...)
}

// Wrap wraps dek for recordingID under the primary KEK and returns the KEK
// ID with the wrapped key.
func (kr *Keyring) Wrap(dek []byte, recordingID string) (string, []byte, error) {
	id := kr.Primary()
	if id == "" {
		return "", nil, ErrNoPrimary
	}
	w, err := kr.WrapWith(id, dek, recordingID)
	return id, w, err
}

// WrapWith wraps dek under KEK id.
func (kr *Keyring) WrapWith(id string, dek []byte, recordingID string) ([]byte, error) {
	if len(dek) != DataKeySize {
		return nil, errors.New("keys: data key must be 32 bytes")
	}
	a, err := kr.aead(id)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+wrapNonceLen, WrappedSize)
	out[0] = wrapVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("keys: wrap: %w", err)
	}
	return a.Seal(out, out[1:1+wrapNonceLen], dek, wrapAD(id, recordingID)), nil
}

// Unwrap opens a wrapped data key made by Wrap for recordingID under KEK id.
func (kr *Keyring) Unwrap(id string, wrapped []byte, recordingID string) ([]byte, error) {
	if len(wrapped) != WrappedSize || wrapped[0] != wrapVersion {
		return nil, ErrUnwrap
	}
	a, err := kr.aead(id)
	if err != nil {
		return nil, err
	}
	dek, err := a.Open(nil, wrapped[1:1+wrapNonceLen], wrapped[1+wrapNonceLen:], wrapAD(id, recordingID))
	if err != nil {
		return nil, ErrUnwrap
	}
	return dek, nil
}

// Rewrap unwraps a data key and wraps it again under the primary KEK. It
// returns the new KEK ID and wrapped key; the data key never leaves.
func (kr *Keyring) Rewrap(id string, wrapped []byte, recordingID string) (string, []byte, error) {
	dek, err := kr.Unwrap(id, wrapped, recordingID)
	if err != nil {
		return "", nil, err
	}
	defer clear(dek)
	return kr.Wrap(dek, recordingID)
}

// MarshalJSON encodes the keyring file.
func (kr *Keyring) marshal() ([]byte, error) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return json.MarshalIndent(keyringFile{Version: 1, Primary: kr.primary, Keys: kr.keys}, "", "  ")
}

func parseKeyring(data []byte) (*Keyring, error) {
	var f keyringFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyring, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrKeyring, f.Version)
	}
	seen := map[string]bool{}
	primaryOK := false
	for _, k := range f.Keys {
		if k.ID == "" || seen[k.ID] {
			return nil, fmt.Errorf("%w: empty or duplicate key id", ErrKeyring)
		}
		seen[k.ID] = true
		if k.RetiredAt == nil && len(k.Key) != 32 {
			return nil, fmt.Errorf("%w: key %s is not 32 bytes", ErrKeyring, k.ID)
		}
		if k.ID == f.Primary {
			primaryOK = k.RetiredAt == nil
		}
	}
	if !primaryOK {
		return nil, ErrNoPrimary
	}
	return &Keyring{primary: f.Primary, keys: f.Keys}, nil
}

// KeyringFile is a Keyring kept in a JSON file (mode 0600). The running
// server reloads it when the file changes on disk (after `openvisit keys
// rotate` or `retire`), so operator commands need no restart.
type KeyringFile struct {
	path string

	mu      sync.Mutex
	kr      *Keyring
	modTime time.Time
	size    int64
}

// OpenKeyringFile loads the keyring at path. With create, a missing file
// is generated with one primary KEK (development, or `keys generate`).
func OpenKeyringFile(path string, create bool, now time.Time) (*KeyringFile, error) {
	f := &KeyringFile{path: path}
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("keys: keyring %s does not exist (run `openvisit keys generate`)", path)
		}
		kr, err := NewKeyring(now)
		if err != nil {
			return nil, err
		}
		f.kr = kr
		if err := f.saveNew(); err != nil {
			return nil, err
		}
		return f, nil
	}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the file's path.
func (f *KeyringFile) Path() string { return f.path }

func (f *KeyringFile) reload() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("keys: keyring %s must not be readable by group or others (chmod 600)", f.path)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	kr, err := parseKeyring(data)
	if err != nil {
		return err
	}
	f.kr, f.modTime, f.size = kr, st.ModTime(), st.Size()
	return nil
}

// Keyring returns the current keyring, reloading the file if it changed.
func (f *KeyringFile) Keyring() (*Keyring, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, err := os.Stat(f.path); err == nil && (!st.ModTime().Equal(f.modTime) || st.Size() != f.size) {
		if err := f.reload(); err != nil {
			return nil, err
		}
	}
	return f.kr, nil
}

func (f *KeyringFile) saveNew() error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return f.save()
}

// Save writes the keyring atomically (a temporary file renamed over the old).
func (f *KeyringFile) Save() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.save()
}

func (f *KeyringFile) save() error {
	data, err := f.kr.marshal()
	if err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".keyring-*")
	if err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: keyring: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	if st, err := os.Stat(f.path); err == nil {
		f.modTime, f.size = st.ModTime(), st.Size()
	}
	return nil
}
