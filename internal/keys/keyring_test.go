package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeyringWrapRotateRetire(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	path := filepath.Join(t.TempDir(), "keyring.json")
	kf, err := OpenKeyringFile(path, true, now)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("keyring mode %v, want 0600", st.Mode().Perm())
	}
	kr, _ := kf.Keyring()
	dek := bytes.Repeat([]byte{7}, 32)
	rec := "3f1c9d2e-7b4a-4c8e-9f61-2d5e8a7b0c13"
	old, wrapped, err := kr.Wrap(dek, rec)
	if err != nil || len(wrapped) != WrappedSize {
		t.Fatalf("wrap: %v (%d bytes)", err, len(wrapped))
	}
	if got, err := kr.Unwrap(old, wrapped, rec); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := kr.Unwrap(old, wrapped, "00000000-7b4a-4c8e-9f61-2d5e8a7b0c13"); !errors.Is(err, ErrUnwrap) {
		t.Errorf("unwrap for another recording: %v, want ErrUnwrap", err)
	}
	tampered := bytes.Clone(wrapped)
	tampered[20] ^= 1
	if _, err := kr.Unwrap(old, tampered, rec); !errors.Is(err, ErrUnwrap) {
		t.Errorf("tampered: %v", err)
	}

	// Rotate: new primary; the old key still unwraps; rewrap moves it.
	newID, err := kr.Rotate(now)
	if err != nil || newID == old || kr.Primary() != newID {
		t.Fatalf("rotate: %v", err)
	}
	if err := kr.Retire(newID, now); err == nil {
		t.Error("retired the primary")
	}
	id2, w2, err := kr.Rewrap(old, wrapped, rec)
	if err != nil || id2 != newID {
		t.Fatalf("rewrap: %v", err)
	}
	if err := kf.Save(); err != nil {
		t.Fatal(err)
	}
	// A second handle sees the file; retire there, the first reloads.
	other, err := OpenKeyringFile(path, false, now)
	if err != nil {
		t.Fatal(err)
	}
	okr, _ := other.Keyring()
	if err := okr.Retire(old, now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // distinct mtime
	if err := other.Save(); err != nil {
		t.Fatal(err)
	}
	kr, err = kf.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Unwrap(old, wrapped, rec); !errors.Is(err, ErrRetiredKEK) {
		t.Errorf("unwrap under a retired KEK: %v", err)
	}
	if got, err := kr.Unwrap(id2, w2, rec); err != nil || !bytes.Equal(got, dek) {
		t.Errorf("unwrap rewrapped: %v", err)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, dek) {
		t.Error("the keyring file holds a data key")
	}
}

func TestKeyringFileRefusesLoosePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	if _, err := OpenKeyringFile(path, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyringFile(path, false, time.Now()); err == nil {
		t.Error("a world-readable keyring was accepted")
	}
}

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte(`{"version":1,"primary":"a","keys":[{"id":"a","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","created_at":"2024-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := parseKeyring(data)
		if err == nil && kr.Primary() == "" {
			t.Error("accepted a keyring without a primary")
		}
	})
}
