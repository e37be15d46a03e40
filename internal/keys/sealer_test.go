package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s, err := NewSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("totp", []byte("JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("JBSWY3DP")) {
		t.Fatal("sealed data contains the plaintext")
	}
	got, err := s.Open("totp", sealed)
	if err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("other-purpose", sealed); !errors.Is(err, ErrOpen) {
		t.Errorf("opened under another purpose: %v", err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	if _, err := s.Open("totp", flipped); !errors.Is(err, ErrOpen) {
		t.Errorf("opened a flipped ciphertext: %v", err)
	}
	if _, err := s.Open("totp", sealed[:5]); !errors.Is(err, ErrOpen) {
		t.Errorf("opened a short ciphertext: %v", err)
	}
	other := make([]byte, 32)
	s2, _ := NewSealer(other)
	if _, err := s2.Open("totp", sealed); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with another key: %v", err)
	}
}

func TestLoadSecret(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "secret.key")
	if _, err := LoadSecret(p, false); err == nil {
		t.Fatal("missing secret loaded without create")
	}
	a, err := LoadSecret(p, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadSecret(p, false)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("reloaded secret differs (%v)", err)
	}
}
