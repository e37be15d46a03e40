package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/testenv"
)

// member is one file of a hand-made archive.
type member struct {
	name string
	body []byte
}

// archive encrypts a tar of members to id's recipient.
func archive(t *testing.T, id *age.X25519Identity, members ...member) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := age.Encrypt(&out, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(w)
	for _, m := range members {
		if _, err := addBytes(tw, m.name, m.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func fileOf(name string, body []byte) File {
	f, _ := addBytes(tar.NewWriter(&bytes.Buffer{}), name, body)
	return f
}

// restoreEnv is an empty database, a bucket name and the two keys.
type restoreEnv struct {
	p        RestoreParams
	pool     *pgxpool.Pool
	keyPath  string
	backup   *age.X25519Identity
	recovery *age.X25519Identity
}

func newRestoreEnv(t *testing.T) *restoreEnv {
	t.Helper()
	pool, err := db.Open(context.Background(), testenv.Postgres(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s3 := testenv.MinIO(t)
	client, err := objstore.New(s3.Config(""))
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	e := &restoreEnv{pool: pool, keyPath: filepath.Join(t.TempDir(), "keyring.json")}
	e.backup, _ = age.GenerateX25519Identity()
	e.recovery, _ = age.GenerateX25519Identity()
	e.p = RestoreParams{Pool: pool, S3: client, Bucket: "ov-test-restore-" + hex.EncodeToString(b[:]),
		Identities: []age.Identity{e.backup}, Recovery: []age.Identity{e.recovery},
		KeyPaths: map[string]string{"recording-keyring": e.keyPath}, TempDir: t.TempDir()}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, k := range []string{"rec/a"} {
			_ = client.RemoveObject(ctx, e.p.Bucket, k, minio.RemoveObjectOptions{})
		}
		_ = client.RemoveBucket(ctx, e.p.Bucket)
	})
	return e
}

// members returns a well-formed archive's members (escrow sealed to
// sealTo) with object "rec/a"; change edits the manifest before it is
// encoded.
func (e *restoreEnv) members(t *testing.T, sealTo age.Recipient, change func(*Manifest)) []member {
	t.Helper()
	var escrow Escrow
	kf := filepath.Join(t.TempDir(), "keyring.json")
	if err := os.WriteFile(kf, []byte(`{"version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sealed, err := sealEscrow([]KeyFile{{Name: "recording-keyring", Path: kf, Required: true}}, []age.Recipient{sealTo}, &escrow)
	if err != nil {
		t.Fatal(err)
	}
	dump, obj := []byte("not a real dump"), []byte("ciphertext of a recording")
	m := Manifest{Format: Format, ID: "bk-test", Database: fileOf(dumpName, dump), Objects: []File{fileOf("rec/a", obj)}}
	m.Escrow = Escrow{File: fileOf(escrowName, sealed), Keys: escrow.Keys}
	if change != nil {
		change(&m)
	}
	body, _ := json.Marshal(m)
	return []member{{dumpName, dump}, {escrowName, sealed}, {objectsDir + "rec/a", obj}, {manifestName, body}}
}

// untouched: the database still holds no table and no key file was written.
func (e *restoreEnv) untouched(t *testing.T) {
	t.Helper()
	if err := checkEmpty(context.Background(), e.pool); err != nil {
		t.Errorf("the database was touched: %v", err)
	}
	if _, err := os.Stat(e.keyPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was written: %v", err)
	}
}

// TestRestoreRefusesBadArchives: an archive that does not match its
// manifest, one cut short, one opened with the wrong key, and a key escrow
// the recovery key does not open are refused before the database or any
// key file is touched.
func TestRestoreRefusesBadArchives(t *testing.T) {
	e := newRestoreEnv(t)
	other, _ := age.GenerateX25519Identity()
	good := e.members(t, e.recovery.Recipient(), nil)
	for _, tc := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"object differs from the manifest", archive(t, e.backup, e.members(t, e.recovery.Recipient(), func(m *Manifest) {
			m.Objects[0].SHA256 = strings.Repeat("0", 64)
		})...), "recording object rec/a"},
		{"no manifest", archive(t, e.backup, good[:3]...), "no manifest"},
		{"unknown member", archive(t, e.backup, append([]member{{"../etc/passwd", []byte("x")}}, good...)...), "unknown member"},
		{"wrong archive key", archive(t, other, good...), "open archive"},
		{"escrow sealed to another recovery key", archive(t, e.backup, e.members(t, other.Recipient(), nil)...), "open key escrow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Restore(context.Background(), e.p, bytes.NewReader(tc.archive))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v, want an error about %q", err, tc.want)
			}
			e.untouched(t)
		})
	}
}

// TestRestoreRefusesNonEmptyDatabase: restore never loads a dump over data.
func TestRestoreRefusesNonEmptyDatabase(t *testing.T) {
	e := newRestoreEnv(t)
	if _, err := e.pool.Exec(context.Background(), `CREATE TABLE keep (x int)`); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(context.Background(), e.p, bytes.NewReader(archive(t, e.backup, e.members(t, e.recovery.Recipient(), nil)...)))
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Restore onto a database with a table: %v, want ErrNotEmpty", err)
	}
}
