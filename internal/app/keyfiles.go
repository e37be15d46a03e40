package app

import (
	"path/filepath"

	"github.com/openvisit/openvisit/internal/config"
)

// Names of the key files a process loads, as backups escrow them
// (internal/backup): each maps to the file cfg names, or its default in
// data_dir. The loaders below and `openvisit backup`/`restore` read the
// paths from here, so a key cannot be loaded from one place and escrowed
// from another.
const (
	KeyRecordingKeyring = "recording-keyring"
	KeyAuditCheckpoint  = "audit-checkpoint-key"
	KeyAuthSecret       = "auth-secret-key"
	KeyTokenSigning     = "token-signing-key"
)

// KeyFilePaths returns where each key file lives for cfg.
func KeyFilePaths(cfg config.Config) map[string]string {
	or := func(path, def string) string {
		if path != "" {
			return path
		}
		return filepath.Join(cfg.DataDir, def)
	}
	return map[string]string{
		KeyRecordingKeyring: or(cfg.Recording.KeyringFile, "recording-keyring.json"),
		KeyAuditCheckpoint:  or(cfg.Audit.CheckpointKeyFile, "audit-checkpoint.key"),
		KeyAuthSecret:       or(cfg.Auth.SecretKeyFile, "auth-secret.key"),
		KeyTokenSigning:     or(cfg.Token.SigningKeyFile, "token-signing.key"),
	}
}
