package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
)

// Restore errors.
var (
	ErrNotEmpty = errors.New("backup: restore: the target database is not empty")
	ErrArchive  = errors.New("backup: restore: archive does not match its manifest")
)

// RestoreParams configures Restore.
type RestoreParams struct {
	Pool        *pgxpool.Pool // the target database: empty
	DatabaseURL string        // the same database, for pg_restore
	PGBinDir    string
	S3          *minio.Client
	Bucket      string       // the recordings bucket; created when missing
	Anchors     AnchorGetter // the write-once bucket, which must hold the anchors the manifest names
	Identities  []age.Identity
	Recovery    []age.Identity
	// KeyPaths says where each escrowed key file goes (by KeyFile.Name).
	// An existing file is kept when it holds the same bytes and is an
	// error otherwise; a key file without a path is an error.
	KeyPaths map[string]string
	TempDir  string
}

// Restore reads an archive from in and brings it up: recording objects
// into the bucket, key files to their paths, the dump into the empty
// database. Every member is checked against the manifest, and the
// manifest's audit anchors against the write-once bucket, before the
// database is touched. Recording the restore in the audit trail is the
// caller's next step (audit.RecordRestore), with the restored checkpoint
// key.
func Restore(ctx context.Context, p RestoreParams, in io.Reader) (Manifest, error) {
	var m Manifest
	if err := checkEmpty(ctx, p.Pool); err != nil {
		return m, err
	}
	if err := ensureBucket(ctx, p.S3, p.Bucket); err != nil {
		return m, err
	}
	dir, err := os.MkdirTemp(p.TempDir, "openvisit-restore-")
	if err != nil {
		return m, fmt.Errorf("backup: restore: %w", err)
	}
	defer os.RemoveAll(dir)
	r, err := age.Decrypt(in, p.Identities...)
	if err != nil {
		return m, fmt.Errorf("backup: restore: open archive: %w", err)
	}
	got, err := readArchive(ctx, p, tar.NewReader(r), dir)
	if err != nil {
		return m, err
	}
	m = got.manifest
	if err := got.check(); err != nil {
		return m, err
	}
	if err := checkAnchors(ctx, p.Anchors, m.Audit.Anchors); err != nil {
		return m, err
	}
	if err := openEscrow(got.escrow, p.Recovery, p.KeyPaths); err != nil {
		return m, err
	}
	if err := pgRestore(ctx, p, filepath.Join(dir, dumpName)); err != nil {
		return m, err
	}
	return m, checkHead(ctx, p.Pool, m)
}

// checkEmpty refuses a database that holds any table of its own.
func checkEmpty(ctx context.Context, pool *pgxpool.Pool) error {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&n)
	if err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w (%d tables); restore into a new database", ErrNotEmpty, n)
	}
	return nil
}

func ensureBucket(ctx context.Context, s3 *minio.Client, bucket string) error {
	ok, err := s3.BucketExists(ctx, bucket)
	if err == nil && !ok {
		err = s3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
	}
	if err != nil {
		return fmt.Errorf("backup: restore: bucket %s: %w", bucket, err)
	}
	return nil
}

// received is what an archive held.
type received struct {
	manifest    Manifest
	hasManifest bool
	dump        File
	escrow      []byte
	escrowFile  File
	objects     map[string]File
}

// readArchive reads every member: the dump to dir, recording objects
// straight into the bucket, the escrow and the manifest into memory.
func readArchive(ctx context.Context, p RestoreParams, tr *tar.Reader, dir string) (*received, error) {
	got := &received{objects: map[string]File{}}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return nil, fmt.Errorf("backup: restore: read archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg || h.Size < 0 {
			return nil, fmt.Errorf("%w: member %q is not a file", ErrArchive, h.Name)
		}
		switch {
		case h.Name == dumpName:
			got.dump, err = saveFile(tr, filepath.Join(dir, dumpName), h.Size)
		case h.Name == escrowName:
			got.escrow, got.escrowFile, err = readSmall(tr, h, maxEscrow)
		case h.Name == manifestName:
			var body []byte
			if body, _, err = readSmall(tr, h, maxManifest); err == nil {
				err = json.Unmarshal(body, &got.manifest)
				got.hasManifest = err == nil
			}
		case strings.HasPrefix(h.Name, objectsDir):
			key := strings.TrimPrefix(h.Name, objectsDir)
			if !validKey(key) {
				return nil, fmt.Errorf("%w: object key %q", ErrArchive, key)
			}
			got.objects[key], err = putObject(ctx, p.S3, p.Bucket, key, tr, h.Size)
		default:
			return nil, fmt.Errorf("%w: unknown member %q", ErrArchive, h.Name)
		}
		if err != nil {
			return nil, err
		}
	}
}

// validKey accepts the opaque keys the recorder generates and nothing
// that could name a path outside the bucket's namespace.
func validKey(k string) bool {
	return k != "" && len(k) <= maxKeyLen && !strings.Contains(k, "..") && !strings.HasPrefix(k, "/") &&
		!strings.ContainsAny(k, "\x00\\")
}

func readSmall(r io.Reader, h *tar.Header, limit int64) ([]byte, File, error) {
	if h.Size > limit {
		return nil, File{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrArchive, h.Name, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r, h.Size))
	if err != nil {
		return nil, File{}, fmt.Errorf("backup: restore: %s: %w", h.Name, err)
	}
	sum := sha256.Sum256(body)
	return body, File{Name: h.Name, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}, nil
}

func saveFile(r io.Reader, path string, size int64) (File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return File{}, fmt.Errorf("backup: restore: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("backup: restore: %s: %w", filepath.Base(path), err)
	}
	return File{Name: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func putObject(ctx context.Context, s3 *minio.Client, bucket, key string, r io.Reader, size int64) (File, error) {
	h := sha256.New()
	_, err := s3.PutObject(ctx, bucket, key, io.TeeReader(r, h), size, minio.PutObjectOptions{
		ContentType: "application/octet-stream", PartSize: 16 << 20})
	if err != nil {
		return File{}, fmt.Errorf("backup: restore: recording object %s: %w", key, err)
	}
	return File{Name: key, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// check compares what arrived with the manifest, member by member.
func (g *received) check() error {
	m := &g.manifest
	switch {
	case !g.hasManifest:
		return fmt.Errorf("%w: no manifest (the archive is cut short)", ErrArchive)
	case m.Format != Format:
		return fmt.Errorf("%w: format %q, want %q", ErrArchive, m.Format, Format)
	case g.dump != m.Database:
		return fmt.Errorf("%w: %s", ErrArchive, dumpName)
	case g.escrowFile != m.Escrow.File:
		return fmt.Errorf("%w: %s", ErrArchive, escrowName)
	case len(g.objects) != len(m.Objects):
		return fmt.Errorf("%w: %d recording objects, manifest lists %d", ErrArchive, len(g.objects), len(m.Objects))
	}
	for _, f := range m.Objects {
		if g.objects[f.Name] != f {
			return fmt.Errorf("%w: recording object %s", ErrArchive, f.Name)
		}
	}
	return nil
}

// checkAnchors: the write-once bucket still holds, byte for byte, the
// checkpoint anchors that pin the backup's chain.
func checkAnchors(ctx context.Context, a AnchorGetter, anchors []Anchor) error {
	if len(anchors) > 0 && a == nil {
		return errors.New("backup: restore: the backup names audit anchors but no anchor bucket is configured")
	}
	for _, x := range anchors {
		body, err := a.Get(ctx, x.Key, x.Version)
		if err != nil {
			return fmt.Errorf("backup: restore: audit anchor #%d: %w", x.Seq, err)
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != x.SHA256 {
			return fmt.Errorf("backup: restore: audit anchor #%d (%s) differs from the one the backup recorded", x.Seq, x.Key)
		}
	}
	return nil
}

// openEscrow decrypts the key files with the recovery identities and
// writes each where paths says.
func openEscrow(sealed []byte, ids []age.Identity, paths map[string]string) error {
	r, err := age.Decrypt(bytes.NewReader(sealed), ids...)
	if err != nil {
		return fmt.Errorf("backup: restore: open key escrow (recovery key): %w", err)
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("backup: restore: key escrow: %w", err)
		}
		body, _, err := readSmall(tr, h, maxKeyFile)
		if err != nil {
			return err
		}
		path := paths[h.Name]
		if path == "" {
			return fmt.Errorf("backup: restore: no path for escrowed key %q", h.Name)
		}
		if err := writeKeyFile(path, body); err != nil {
			return err
		}
	}
}

func writeKeyFile(path string, body []byte) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, body):
		return nil
	case err == nil:
		return fmt.Errorf("backup: restore: %s exists and differs from the escrowed key; move it away first", path)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("backup: restore: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: restore: %s: %w", path, err)
	}
	return nil
}

// pgRestore loads the dump in one transaction. Ownership and grants are
// not restored (the target's roles may differ): the connecting role owns
// everything, and the operator re-applies internal/db/roles.sql, as after
// any migration.
func pgRestore(ctx context.Context, p RestoreParams, dump string) error {
	tool, err := pgTool(p.PGBinDir, "pg_restore")
	if err != nil {
		return err
	}
	u, env, err := libpqURL(p.DatabaseURL)
	if err != nil {
		return err
	}
	return runPG(ctx, tool, env, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
		"--no-password", "--dbname="+u, dump)
}

// checkHead: the restored chain ends where the manifest says.
func checkHead(ctx context.Context, pool *pgxpool.Pool, m Manifest) error {
	var seq int64
	var hash []byte
	if err := pool.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&seq, &hash); err != nil {
		return fmt.Errorf("backup: restore: audit head: %w", err)
	}
	if seq != m.Audit.HeadSeq || hex.EncodeToString(hash) != m.Audit.HeadHash {
		return fmt.Errorf("%w: restored audit head #%d, manifest #%d", ErrArchive, seq, m.Audit.HeadSeq)
	}
	return nil
}

// Keys lists the names of the key files a manifest escrows, sorted.
func (m Manifest) Keys() []string { return slices.Sorted(slices.Values(m.Escrow.Keys)) }
