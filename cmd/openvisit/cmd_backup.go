package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/audit/anchor"
	"github.com/openvisit/openvisit/internal/backup"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/objstore"
)

// maxAgeKeyFile bounds a recipients or identity file.
const maxAgeKeyFile = 64 << 10

// backupCmd runs `openvisit backup --out FILE`: one encrypted archive of
// the database, the recording objects and the escrowed keys
// (internal/backup), audited as backup.create.
func backupCmd(args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := configFlags("backup", stderr)
	out := fs.String("out", "", "archive file to write (required)")
	recipients := fs.String("recipients", "", "age recipients file (default: backup.recipients_file)")
	recovery := fs.String("recovery-recipients", "", "recovery recipients file for the key escrow (default: backup.recovery_recipients_file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("usage: openvisit backup --out FILE [--config FILE] [--recipients FILE] [--recovery-recipients FILE]")
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, noMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	p := backup.Params{Pool: pool, DatabaseURL: cfg.Database.URL, PGBinDir: cfg.Backup.PGBinDir,
		Bucket: cfg.S3.Bucket, KeyFiles: escrowedKeys(cfg), Now: nowFunc}
	if p.Recipients, err = readRecipients(or(*recipients, cfg.Backup.RecipientsFile), "backup.recipients_file"); err != nil {
		return err
	}
	if p.Recovery, err = readRecipients(or(*recovery, cfg.Backup.RecoveryRecipientsFile), "backup.recovery_recipients_file"); err != nil {
		return err
	}
	var anchors *anchor.Bucket
	if p.S3, anchors, err = storage(cfg); err != nil {
		return err
	}
	p.Anchors = anchors
	m, err := writeArchive(ctx, p, *out)
	if err != nil {
		return err
	}
	if err := audit.New(pool).Append(ctx, audit.Event{ActorID: "operator", ActorRole: "operator", Action: "backup.create",
		ResourceType: "backup", ResourceID: m.ID, Outcome: audit.Success,
		Reason: fmt.Sprintf("audit head #%d, %d recording objects", m.Audit.HeadSeq, len(m.Objects))}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup %s written to %s: database %d bytes, %d recording objects, audit head #%d, keys escrowed: %s\n",
		m.ID, *out, m.Database.Size, len(m.Objects), m.Audit.HeadSeq, strings.Join(m.Keys(), ", "))
	return nil
}

// writeArchive writes the archive beside path and renames it into place
// once whole, so that a failed run leaves no file that looks like a backup.
func writeArchive(ctx context.Context, p backup.Params, path string) (backup.Manifest, error) {
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp)
	m, err := backup.Create(ctx, p, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	return m, err
}

// restoreCmd runs `openvisit restore --from FILE`: the archive onto an
// empty database and bucket, then the restore recorded in the audit trail
// (audit.RecordRestore) with the restored checkpoint key.
func restoreCmd(args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := configFlags("restore", stderr)
	from := fs.String("from", "", "archive file to restore (required)")
	identity := fs.String("identity", "", "age identity file that opens the archive (required)")
	recovery := fs.String("recovery-identity", "", "age identity file of the recovery key that opens the key escrow (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *identity == "" || *recovery == "" {
		return errors.New("usage: openvisit restore --from FILE --identity FILE --recovery-identity FILE [--config FILE]")
	}
	ctx := context.Background()
	cfg, pool, err := configAndDatabase(ctx, *cfgPath, noMigrations)
	if err != nil {
		return err
	}
	defer pool.Close()
	p := backup.RestoreParams{Pool: pool, DatabaseURL: cfg.Database.URL, PGBinDir: cfg.Backup.PGBinDir,
		Bucket: cfg.S3.Bucket, KeyPaths: app.KeyFilePaths(cfg)}
	if p.Identities, err = readIdentities(*identity); err != nil {
		return err
	}
	if p.Recovery, err = readIdentities(*recovery); err != nil {
		return err
	}
	var anchors *anchor.Bucket
	if p.S3, anchors, err = storage(cfg); err != nil {
		return err
	}
	p.Anchors = anchors
	f, err := os.Open(*from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	m, err := backup.Restore(ctx, p, f)
	if err != nil {
		return err
	}
	key, err := app.CheckpointKey(cfg)
	if err != nil {
		return err
	}
	r, err := audit.RecordRestore(ctx, pool, key, anchors, m.ID, "operator", nowFunc())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored backup %s: %d recording objects, keys %s; audit chain continues from #%d",
		m.ID, len(m.Objects), strings.Join(m.Keys(), ", "), r.Seq)
	if r.LostTo > r.Seq {
		fmt.Fprintf(stdout, "; entries #%d..#%d, anchored after the backup, are lost", r.Seq+1, r.LostTo)
	}
	fmt.Fprintln(stdout, "\nnext: apply internal/db/roles.sql, then `openvisit audit verify`, then start `openvisit serve`")
	return nil
}

// storage opens object storage and the write-once anchor bucket; a backup
// needs both.
func storage(cfg config.Config) (*minio.Client, *anchor.Bucket, error) {
	if cfg.S3.Endpoint == "" {
		return nil, nil, errors.New("config: s3.endpoint is required for backup and restore")
	}
	s3, err := objstore.New(cfg.S3)
	if err != nil {
		return nil, nil, err
	}
	b, err := anchor.New(anchor.Params{Client: s3, Bucket: cfg.Audit.AnchorBucket, Retention: cfg.Audit.AnchorRetention})
	return s3, b, err
}

// escrowedKeys are the key files a backup seals to the recovery key: the
// keyring and the checkpoint key are required (without them no recording
// decrypts and the chain cannot be extended); the others are escrowed
// when present.
func escrowedKeys(cfg config.Config) []backup.KeyFile {
	paths := app.KeyFilePaths(cfg)
	return []backup.KeyFile{
		{Name: app.KeyRecordingKeyring, Path: paths[app.KeyRecordingKeyring], Required: true},
		{Name: app.KeyAuditCheckpoint, Path: paths[app.KeyAuditCheckpoint], Required: true},
		{Name: app.KeyAuthSecret, Path: paths[app.KeyAuthSecret]},
		{Name: app.KeyTokenSigning, Path: paths[app.KeyTokenSigning]},
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readRecipients(path, key string) ([]age.Recipient, error) {
	if path == "" {
		return nil, fmt.Errorf("config: %s is required", key)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	defer f.Close()
	r, err := age.ParseRecipients(io.LimitReader(f, maxAgeKeyFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return r, nil
}

func readIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("restore: identity: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(io.LimitReader(f, maxAgeKeyFile))
	if err != nil {
		return nil, fmt.Errorf("restore: identity %s: %w", path, err)
	}
	return ids, nil
}
