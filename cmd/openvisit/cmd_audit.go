package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/token"
)

// auditCmd runs `openvisit audit verify`: recompute the hash chain and
// check it against the signed checkpoints in Postgres and in the write-once
// bucket. It exits non-zero when tampering is found.
func auditCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: openvisit audit verify [--config FILE] [--public-key BASE64]")
	}
	fs, cfgPath := configFlags("audit verify", stderr)
	pubFlag := fs.String("public-key", "", "checkpoint public key (base64); default: derived from audit.checkpoint_key_file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Database.URL == "" {
		return errNoDatabaseURL
	}
	var pub ed25519.PublicKey
	if *pubFlag != "" {
		if pub, err = token.ParsePublicKey(*pubFlag); err != nil {
			return err
		}
	} else {
		key, err := app.CheckpointKey(cfg)
		if err != nil {
			return err
		}
		pub = key.Public().(ed25519.PublicKey)
	}
	ctx := context.Background()
	pool, err := openDatabase(ctx, cfg, noMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	var s3 *minio.Client
	if cfg.S3.Endpoint != "" {
		if s3, err = objstore.New(cfg.S3); err != nil {
			return err
		}
	}
	return audit.VerifyCommand(ctx, pool, s3, cfg.Audit.AnchorBucket, pub, stdout)
}
