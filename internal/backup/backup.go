// Package backup writes and restores OpenVisit's backups: one encrypted
// archive that holds everything a clinic needs to come back on empty
// PostgreSQL and object storage, except the audit anchors, which live in
// the write-once bucket and survive on their own.
//
// An archive is an age file (filippo.io/age) encrypted to the recipients
// in backup.recipients_file. Inside, a tar stream:
//
//	database.dump   pg_dump (custom format) of the database, taken in the
//	                same snapshot as everything the manifest lists
//	escrow.age      the key files (recording keyring, audit checkpoint key,
//	                server secret, token signing key), a tar sealed again to
//	                the recovery keys in backup.recovery_recipients_file
//	objects/KEY     every complete recording chunk object, as stored
//	                (ciphertext under its recording's data key)
//	manifest.json   what the archive holds, with sizes and SHA-256s, the
//	                audit chain head at the snapshot and the anchors it
//	                depends on; written last, checked by restore
//
// Recording objects are copied into every archive rather than left to
// bucket replication: a backup must restore after the recordings bucket is
// lost, and a replica shares the account (and the mistakes) of its source.
// The managed-service variant in deploy/README.md adds versioned, replicated
// buckets and point-in-time recovery on top.
package backup

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
)

// Format names the archive layout.
const Format = "openvisit.backup.v1"

// Names inside the archive.
const (
	dumpName     = "database.dump"
	escrowName   = "escrow.age"
	manifestName = "manifest.json"
	objectsDir   = "objects/"
)

// Limits restore applies to what it reads.
const (
	maxManifest = 64 << 20
	maxEscrow   = 1 << 20
	maxKeyFile  = 256 << 10
	maxKeyLen   = 256 // recording_chunks.object_key
)

// Manifest describes one archive.
type Manifest struct {
	Format    string     `json:"format"`
	ID        string     `json:"id"`
	CreatedAt time.Time  `json:"created_at"`
	Database  File       `json:"database"`
	Escrow    Escrow     `json:"escrow"`
	Audit     AuditPoint `json:"audit"`
	Objects   []File     `json:"objects"`
}

// File is one member of the archive (Name is its object key for objects).
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Escrow is the sealed key files.
type Escrow struct {
	File
	Keys []string `json:"keys"` // names of the key files sealed
}

// AuditPoint is the audit chain as the snapshot saw it, and the newest
// checkpoint anchors (in the write-once bucket) that pin it.
type AuditPoint struct {
	HeadSeq  int64    `json:"head_seq"`
	HeadHash string   `json:"head_hash"`
	Anchors  []Anchor `json:"anchors"`
}

// Anchor is one checkpoint object the restored chain depends on.
type Anchor struct {
	Seq     int64  `json:"seq"`
	Key     string `json:"key"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// KeyFile is a key file to escrow. Name is how restore finds its place.
type KeyFile struct {
	Name     string
	Path     string
	Required bool // a missing optional file is left out
}

// AnchorGetter reads one version of an anchor object; *anchor.Bucket is one.
type AnchorGetter interface {
	Get(ctx context.Context, key, version string) ([]byte, error)
}

// Params configures Create.
type Params struct {
	Pool        *pgxpool.Pool // the live database (for the snapshot)
	DatabaseURL string        // the same database, for pg_dump
	PGBinDir    string
	S3          *minio.Client
	Bucket      string       // the recordings bucket
	Anchors     AnchorGetter // the write-once bucket; nil: no anchors recorded
	Recipients  []age.Recipient
	Recovery    []age.Recipient
	KeyFiles    []KeyFile
	TempDir     string // for the dump; empty: os.TempDir
	Now         func() time.Time
}

// Create writes one archive to out and returns its manifest.
func Create(ctx context.Context, p Params, out io.Writer) (Manifest, error) {
	if p.Pool == nil || p.S3 == nil || len(p.Recipients) == 0 || len(p.Recovery) == 0 {
		return Manifest{}, errors.New("backup: pool, object storage, recipients and recovery recipients are required")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	m := Manifest{Format: Format, CreatedAt: p.Now().UTC().Truncate(time.Second)}
	m.ID = newID(m.CreatedAt)
	escrow, err := sealEscrow(p.KeyFiles, p.Recovery, &m.Escrow)
	if err != nil {
		return m, err
	}
	dir, err := os.MkdirTemp(p.TempDir, "openvisit-backup-")
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(dir)
	dump := filepath.Join(dir, dumpName)
	keys, err := snapshot(ctx, p, &m, dump)
	if err != nil {
		return m, err
	}
	if err := p.hashAnchors(ctx, &m); err != nil {
		return m, err
	}
	w, err := age.Encrypt(out, p.Recipients...)
	if err != nil {
		return m, fmt.Errorf("backup: encrypt: %w", err)
	}
	tw := tar.NewWriter(w)
	if m.Database, err = addFile(tw, dumpName, dump); err != nil {
		return m, err
	}
	if m.Escrow.File, err = addBytes(tw, escrowName, escrow); err != nil {
		return m, err
	}
	for _, k := range keys {
		f, err := addObject(ctx, tw, p.S3, p.Bucket, k)
		if err != nil {
			return m, err
		}
		m.Objects = append(m.Objects, f)
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		_, err = addBytes(tw, manifestName, body)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return m, fmt.Errorf("backup: write archive: %w", err)
	}
	return m, nil
}

// newID names a backup: its time and a random suffix (opaque, no PHI).
func newID(at time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "bk-" + at.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// snapshot exports one snapshot of the database, reads in it the audit
// head, the newest anchored checkpoints and the complete recording chunks'
// object keys, and runs pg_dump in the same snapshot: the dump and the
// lists agree with each other whatever is written meanwhile.
func snapshot(ctx context.Context, p Params, m *Manifest, dumpPath string) ([]string, error) {
	tx, err := p.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("backup: snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var snap string
	var head []byte
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
		return nil, fmt.Errorf("backup: snapshot: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&m.Audit.HeadSeq, &head); err != nil {
		return nil, fmt.Errorf("backup: audit head: %w", err)
	}
	m.Audit.HeadHash = hex.EncodeToString(head)
	rows, err := tx.Query(ctx, `SELECT seq, object_key, object_version FROM audit_checkpoints
		WHERE anchored_at IS NOT NULL AND object_key <> '' ORDER BY seq DESC, id DESC LIMIT 16`)
	if err != nil {
		return nil, fmt.Errorf("backup: checkpoints: %w", err)
	}
	m.Audit.Anchors, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Anchor, error) {
		var a Anchor
		return a, r.Scan(&a.Seq, &a.Key, &a.Version)
	})
	if err != nil {
		return nil, fmt.Errorf("backup: checkpoints: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT object_key FROM recording_chunks WHERE status = 'complete' ORDER BY object_key`)
	if err != nil {
		return nil, fmt.Errorf("backup: recording objects: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("backup: recording objects: %w", err)
	}
	tool, err := pgTool(p.PGBinDir, "pg_dump")
	if err != nil {
		return nil, err
	}
	u, env, err := libpqURL(p.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := runPG(ctx, tool, env, "--format=custom", "--no-password", "--snapshot="+snap,
		"--file="+dumpPath, "--dbname="+u); err != nil {
		return nil, err
	}
	return keys, nil
}

// hashAnchors records the SHA-256 of each anchor the manifest names, as
// the write-once bucket holds it now.
func (p Params) hashAnchors(ctx context.Context, m *Manifest) error {
	if p.Anchors == nil {
		m.Audit.Anchors = nil
		return nil
	}
	for i, a := range m.Audit.Anchors {
		body, err := p.Anchors.Get(ctx, a.Key, a.Version)
		if err != nil {
			return fmt.Errorf("backup: audit anchor #%d: %w", a.Seq, err)
		}
		sum := sha256.Sum256(body)
		m.Audit.Anchors[i].SHA256 = hex.EncodeToString(sum[:])
	}
	return nil
}

// sealEscrow tars the key files and encrypts the tar to the recovery keys.
func sealEscrow(files []KeyFile, to []age.Recipient, e *Escrow) ([]byte, error) {
	var buf bytesBuffer
	w, err := age.Encrypt(&buf, to...)
	if err != nil {
		return nil, fmt.Errorf("backup: escrow: %w", err)
	}
	tw := tar.NewWriter(w)
	for _, f := range files {
		body, err := os.ReadFile(f.Path)
		if errors.Is(err, os.ErrNotExist) && !f.Required {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("backup: escrow %s: %w", f.Name, err)
		}
		if _, err := addBytes(tw, f.Name, body); err != nil {
			return nil, err
		}
		e.Keys = append(e.Keys, f.Name)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: escrow: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("backup: escrow: %w", err)
	}
	return buf.b, nil
}

type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }

func header(name string, size int64) *tar.Header {
	return &tar.Header{Name: name, Size: size, Mode: 0o600, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
}

func addBytes(tw *tar.Writer, name string, body []byte) (File, error) {
	if err := tw.WriteHeader(header(name, int64(len(body)))); err != nil {
		return File{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	if _, err := tw.Write(body); err != nil {
		return File{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	sum := sha256.Sum256(body)
	return File{Name: name, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}, nil
}

func addFile(tw *tar.Writer, name, path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return File{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	return addStream(tw, name, f, st.Size())
}

// addObject copies one recording object into the archive as stored.
func addObject(ctx context.Context, tw *tar.Writer, s3 *minio.Client, bucket, key string) (File, error) {
	st, err := s3.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return File{}, fmt.Errorf("backup: recording object %s: %w", key, err)
	}
	o, err := s3.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return File{}, fmt.Errorf("backup: recording object %s: %w", key, err)
	}
	defer o.Close()
	f, err := addStream(tw, objectsDir+key, o, st.Size)
	f.Name = key
	return f, err
}

func addStream(tw *tar.Writer, name string, r io.Reader, size int64) (File, error) {
	if err := tw.WriteHeader(header(name, size)); err != nil {
		return File{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("short read: %d of %d bytes", n, size)
	}
	if err != nil {
		return File{}, fmt.Errorf("backup: %s: %w", name, err)
	}
	return File{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
