package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
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
	if len(args) > 0 && args[0] == "record-restore" {
		return recordRestoreCmd(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: openvisit audit verify [--config FILE] [--public-key BASE64] | openvisit audit record-restore --backup-id LABEL [--config FILE]")
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

// recordRestoreCmd runs `openvisit audit record-restore --backup-id LABEL`:
// after a database was restored by other means than `openvisit restore`
// (point-in-time recovery), it records the restore in the write-once
// bucket and the chain (audit.RecordRestore), so that verify names the
// lost entries and the checkpointer extends the chain.
func recordRestoreCmd(args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := configFlags("audit record-restore", stderr)
	id := fs.String("backup-id", "", "what was restored, e.g. pitr-2026-05-01T10:00Z (required; no PHI)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("usage: openvisit audit record-restore --backup-id LABEL [--config FILE]")
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, noMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	key, err := app.CheckpointKey(cfg)
	if err != nil {
		return err
	}
	_, anchors, err := storage(cfg)
	if err != nil {
		return err
	}
	r, err := audit.RecordRestore(ctx, pool, key, anchors, *id, "operator", nowFunc())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restore recorded: chain continues from #%d", r.Seq)
	if r.LostTo > r.Seq {
		fmt.Fprintf(stdout, "; entries #%d..#%d, anchored before the restore, are lost", r.Seq+1, r.LostTo)
	}
	fmt.Fprintln(stdout)
	return nil
}
