package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/openvisit/openvisit/internal/app"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/backup"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/loadtest"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/recording"
	"github.com/openvisit/openvisit/recording/streamaead"
)

// TestBackupRestoreDrill is the quarterly drill (deploy/README.md) in
// small: a visit with a recording and an audit history is backed up with
// `openvisit backup`; entries are written and anchored after it; the
// database, the recordings bucket and the host's key files are lost (the
// write-once anchor bucket survives); `openvisit restore` brings the
// backup up on an empty database and bucket; `openvisit audit verify`
// passes and names exactly the entries lost after the backup; the
// recording decrypts and plays through the library's playback path; the
// patient is found by name and date of birth and its sealed fields read;
// and the checkpointer extends the restored chain.
func TestBackupRestoreDrill(t *testing.T) {
	ctx := context.Background()
	d := newDrill(t)
	d.env(d.liveURL, d.liveDir)
	live := d.open(d.liveURL)
	rec := d.record(live)
	d.auditHistory(live, rec.ID)
	d.checkpoint(live)

	var out bytes.Buffer
	if err := run([]string{"backup", "--out", d.archive}, &out, io.Discard); err != nil {
		t.Fatalf("backup: %v\n%s", err, out.String())
	}
	backedUp := d.head(live)
	// After the backup: more history, anchored, then lost with the database.
	if err := audit.New(live).Append(ctx, audit.Event{ActorID: "admin-1", ActorRole: "admin", Action: "recording.view",
		ResourceType: "recording", ResourceID: rec.ID, Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	d.checkpoint(live)
	lostTo := d.head(live)
	live.Close()
	d.loseEverything()

	d.env(d.restoredURL, d.restoredDir)
	out.Reset()
	err := run([]string{"restore", "--from", d.archive, "--identity", d.identity, "--recovery-identity", d.recoveryIdentity}, &out, io.Discard)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out.String())
	}
	t.Logf("restore: %s", out.String())
	restored := d.open(d.restoredURL)
	d.verify(backedUp-1, lostTo) // the backup's own backup.create entry is after its snapshot
	d.play(restored, rec)
	d.checkpoint(restored)
	d.verify(backedUp-1, lostTo)

	// The restore refuses a database that is not empty.
	err = run([]string{"restore", "--from", d.archive, "--identity", d.identity, "--recovery-identity", d.recoveryIdentity}, io.Discard, io.Discard)
	if !errors.Is(err, backup.ErrNotEmpty) {
		t.Errorf("second restore onto the restored database: %v, want ErrNotEmpty", err)
	}
}

// drill is the drill's world: two databases (the live one, lost, and the
// empty one restored into), the recordings bucket, the anchor bucket, two
// data directories (the lost host's and the new one's), and the backup and
// recovery keys.
type drill struct {
	t                          *testing.T
	s3                         testenv.S3
	client                     *minio.Client
	bucket, anchorBucket       string
	adminURL                   string
	liveURL, restoredURL       string
	liveDir, restoredDir       string
	archive                    string
	identity, recoveryIdentity string
	recipients, recovery       string
	plaintext                  []byte
}

func newDrill(t *testing.T) *drill {
	t.Helper()
	d := &drill{t: t, s3: testenv.MinIO(t), adminURL: testenv.PostgresAdminURL(t), liveURL: testenv.Postgres(t), restoredURL: testenv.Postgres(t),
		liveDir: t.TempDir(), restoredDir: t.TempDir()}
	var b [6]byte
	_, _ = rand.Read(b[:])
	d.bucket = "ov-test-backup-" + hex.EncodeToString(b[:])
	// The anchor bucket is left behind: compliance mode locks its objects
	// for the retention period (see internal/audit's anchorBucket).
	d.anchorBucket = "ov-test-audit-" + hex.EncodeToString(b[:])
	keysDir := t.TempDir()
	d.archive = filepath.Join(t.TempDir(), "drill.ovbackup")
	d.recipients, d.identity = ageKey(t, keysDir, "backup")
	d.recovery, d.recoveryIdentity = ageKey(t, keysDir, "recovery")
	var err error
	if d.client, err = objstore.New(d.s3.Config("")); err != nil {
		t.Fatal(err)
	}
	if err := d.client.MakeBucket(context.Background(), d.bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.emptyBucket() })
	return d
}

// ageKey writes a fresh X25519 identity and its recipient to dir.
func ageKey(t *testing.T, dir, name string) (recipients, identity string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recipients, identity = filepath.Join(dir, name+".pub"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(recipients, []byte(id.Recipient().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(identity, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return recipients, identity
}

// env configures the commands as an operator's host would be: database,
// storage, data directory (the key files' home) and backup keys.
func (d *drill) env(dbURL, dataDir string) {
	t := d.t
	t.Setenv("OPENVISIT_ENVIRONMENT", "development")
	t.Setenv("OPENVISIT_DATABASE_URL", dbURL)
	t.Setenv("OPENVISIT_DATA_DIR", dataDir)
	for _, kv := range d.s3.Env(d.bucket) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("OPENVISIT_AUDIT_ANCHOR_BUCKET", d.anchorBucket)
	t.Setenv("OPENVISIT_AUDIT_ANCHOR_RETENTION", "1m")
	t.Setenv("OPENVISIT_BACKUP_RECIPIENTS_FILE", d.recipients)
	t.Setenv("OPENVISIT_BACKUP_RECOVERY_RECIPIENTS_FILE", d.recovery)
}

func (d *drill) config() config.Config {
	d.t.Helper()
	cfg, err := loadConfig("")
	if err != nil {
		d.t.Fatal(err)
	}
	return cfg
}

func (d *drill) open(u string) *pgxpool.Pool {
	d.t.Helper()
	pool, err := db.Open(context.Background(), u, 4)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(pool.Close)
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		d.t.Fatal(err)
	}
	return pool
}

// record makes a visit with one participant's recording, muxed and
// encrypted by the recorder's own muxer and stored as the recorder stores
// it, and keeps its plaintext.
func (d *drill) record(pool *pgxpool.Pool) store.Recording {
	t, ctx := d.t, context.Background()
	t.Helper()
	cfg := d.config()
	kf, err := keys.OpenKeyringFile(app.KeyringPath(cfg), true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kf.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	visit, id := ids.NewVisitID(), uuid.NewString()
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	kek, wrapped, err := kr.Wrap(dek, id)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-4 * time.Second).Truncate(time.Millisecond)
	if err := store.CreateVisit(ctx, pool, visit, "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	const seg = 64 << 10
	if err := store.CreateRecording(ctx, pool, store.NewRecording{ID: id, VisitID: visit, ParticipantID: ids.NewParticipantID(),
		KEKID: kek, WrappedDEK: wrapped, SegmentSize: seg, StartedAt: started, DeleteAfter: started.Add(time.Hour), RecorderNode: "drill"}); err != nil {
		t.Fatal(err)
	}
	ct := muxSynthetic(t, id, dek, seg, started, 4*time.Second)
	r, err := streamaead.NewReader(bytes.NewReader(ct), dek, []byte(id), streamaead.Params{SegmentSize: seg})
	if err == nil {
		d.plaintext, err = io.ReadAll(r)
	}
	if err != nil {
		t.Fatal(err)
	}
	d.store(pool, id, ct, started)
	d.patient(pool, kf)
	rec, err := store.RecordingByID(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// drillPatient is the patient the drill finds again after the restore.
var drillPatient = store.Patient{Name: "Dora Alvarez-Drill", DateOfBirth: "1961-02-03", Email: "dora@example.org", State: "CA"}

// patient stores drillPatient, its PHI sealed under data keys wrapped by
// the keyring (internal/phi).
func (d *drill) patient(pool *pgxpool.Pool, kf *keys.KeyringFile) {
	t, ctx := d.t, context.Background()
	t.Helper()
	sdb := store.New(pool, kf)
	u, err := store.CreateUser(ctx, sdb, "provider@example.org", "Provider", "provider")
	if err != nil {
		t.Fatal(err)
	}
	p := drillPatient
	p.CreatedBy = u.ID
	if _, err := store.CreatePatient(ctx, sdb, p); err != nil {
		t.Fatal(err)
	}
}

// findPatient finds drillPatient in the restored database by name and
// date of birth through the blind indexes, and reads its sealed fields.
func (d *drill) findPatient(pool *pgxpool.Pool, kf *keys.KeyringFile) {
	t := d.t
	t.Helper()
	got, err := store.LookupPatients(context.Background(), store.New(pool, kf), "alvarez 1961-02-03", 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("restored patient lookup: %d found, %v", len(got), err)
	}
	if got[0].Name != drillPatient.Name || got[0].DateOfBirth != drillPatient.DateOfBirth || got[0].Email != drillPatient.Email {
		t.Fatalf("restored patient does not read back as stored")
	}
}

// store uploads ct as chunk 0 of recording id and completes both.
func (d *drill) store(pool *pgxpool.Pool, id string, ct []byte, started time.Time) {
	t, ctx := d.t, context.Background()
	t.Helper()
	key := "rec/" + uuid.NewString()
	if _, err := d.client.PutObject(ctx, d.bucket, key, bytes.NewReader(ct), int64(len(ct)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	ended := started.Add(4 * time.Second)
	sum := sha256.Sum256(ct)
	ch := store.Chunk{RecordingID: id, Seq: 0, ObjectKey: key, Header: ct[:streamaead.HeaderSize], StartedAt: started}
	if err := store.AddChunk(ctx, pool, ch); err != nil {
		t.Fatal(err)
	}
	ch.Status, ch.Size, ch.SHA256, ch.EndedAt, ch.DurationMS = store.ChunkComplete, int64(len(ct)), sum[:], &ended, 4000
	if err := store.FinishChunk(ctx, pool, ch); err != nil {
		t.Fatal(err)
	}
	if err := store.SetRecordingStatus(ctx, pool, id, "complete", &ended); err != nil {
		t.Fatal(err)
	}
}

// muxSynthetic records d of synthetic VP8 and Opus (loadtest.SyntheticVP8)
// through the recorder's muxer into one chunk's ciphertext.
func muxSynthetic(t *testing.T, id string, dek []byte, seg int, started time.Time, d time.Duration) []byte {
	t.Helper()
	var sink memSink
	now := started
	m, err := recording.NewMuxer(recording.MuxParams{RecordingID: id, DataKey: dek, SegmentSize: seg, ChunkDuration: time.Hour,
		NewChunk: func(int, time.Time) (recording.ChunkSink, func(), error) { return &sink, nil, nil },
		Now:      func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	vp := rtp.NewPacketizer(1200, 96, 1111, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	ap := rtp.NewPacketizer(1200, 111, 2222, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	frame := 0
	for at := time.Duration(0); at < d; at += 20 * time.Millisecond {
		now = started.Add(at)
		for _, p := range ap.Packetize(make([]byte, 80), 960) {
			m.Push(false, p)
		}
		for ; at >= time.Duration(frame)*time.Second/30; frame++ {
			for _, p := range vp.Packetize(loadtest.SyntheticVP8(frame%60 == 0, 3000), 3000) {
				m.Push(true, p)
			}
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

type memSink struct{ bytes.Buffer }

func (*memSink) Close() error { return nil }

// auditHistory appends what a visit's history holds: a view of its
// recording, a download.
func (d *drill) auditHistory(pool *pgxpool.Pool, rec string) {
	d.t.Helper()
	for _, action := range []string{"recording.list", "recording.view", "recording.download"} {
		if err := audit.New(pool).Append(context.Background(), audit.Event{ActorID: "admin-1", ActorRole: "admin",
			Action: action, ResourceType: "recording", ResourceID: rec, Outcome: audit.Success}); err != nil {
			d.t.Fatal(err)
		}
	}
}

// checkpoint anchors the chain head and signs a checkpoint, as a serving
// process's checkpointer does.
func (d *drill) checkpoint(pool *pgxpool.Pool) {
	t, ctx := d.t, context.Background()
	t.Helper()
	cfg := d.config()
	key, err := app.CheckpointKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, anchors, err := storage(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := anchors.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := audit.NewCheckpointer(audit.CheckpointerParams{Pool: pool, Key: key, Anchor: anchors})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckpointNow(ctx); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
}

func (d *drill) head(pool *pgxpool.Pool) int64 {
	d.t.Helper()
	var seq int64
	if err := pool.QueryRow(context.Background(), `SELECT seq FROM audit_chain_head`).Scan(&seq); err != nil {
		d.t.Fatal(err)
	}
	return seq
}

// loseEverything drops the live database, empties and removes the
// recordings bucket and removes the host's key files: all but the anchor
// bucket, as a lost site.
func (d *drill) loseEverything() {
	t, ctx := d.t, context.Background()
	t.Helper()
	u, err := url.Parse(d.liveURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	conn, err := pgx.Connect(ctx, d.adminURL) // not OPENVISIT_DATABASE_URL: env() set it to the live one
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	d.emptyBucket()
	if err := d.client.RemoveBucket(ctx, d.bucket); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(d.liveDir); err != nil {
		t.Fatal(err)
	}
}

func (d *drill) emptyBucket() {
	ctx := context.Background()
	for o := range d.client.ListObjects(ctx, d.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err == nil {
			_ = d.client.RemoveObject(ctx, d.bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
}

// verify runs `openvisit audit verify` and checks that it passes and names
// the entries after the backup's point, backedUp+1..lostTo, as lost.
func (d *drill) verify(backedUp, lostTo int64) {
	t := d.t
	t.Helper()
	var out bytes.Buffer
	if err := run([]string{"audit", "verify"}, &out, io.Discard); err != nil {
		t.Fatalf("audit verify after the restore: %v\n%s", err, out.String())
	}
	want := "chain continues from #" + itoa(backedUp) + "; entries #" + itoa(backedUp+1) + "..#" + itoa(lostTo) + " (anchored before the restore) were lost"
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "OK:") {
		t.Fatalf("audit verify does not pass naming the lost entries (%q):\n%s", want, out.String())
	}
	t.Logf("audit verify: %s", out.String())
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// play opens the restored recording through the library, as the playback
// API does, and checks it is the recorded media and a WebM that plays:
// video and audio frames in order.
func (d *drill) play(pool *pgxpool.Pool, want store.Recording) {
	t, ctx := d.t, context.Background()
	t.Helper()
	cfg := d.config()
	rec, err := store.RecordingByID(ctx, pool, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := store.ChunksOf(ctx, pool, rec.ID)
	if err != nil || len(chunks) != 1 {
		t.Fatalf("restored chunks: %d, %v", len(chunks), err)
	}
	objs, err := recording.NewObjects(cfg.S3)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := keys.OpenKeyringFile(app.KeyringPath(cfg), false, time.Now())
	if err != nil {
		t.Fatalf("the restored keyring: %v", err)
	}
	d.findPatient(pool, kf)
	pb, err := (&recording.Library{Objects: objs, Keys: kf}).Open(ctx, rec, chunks[0])
	if err != nil {
		t.Fatalf("open the restored recording: %v", err)
	}
	defer pb.Close()
	got, err := io.ReadAll(pb)
	if err != nil {
		t.Fatalf("play the restored recording: %v", err)
	}
	if !bytes.Equal(got, d.plaintext) {
		t.Fatalf("restored recording plays %d bytes, recorded %d", len(got), len(d.plaintext))
	}
	in, err := recording.InspectWebM(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("restored recording is not a playable WebM: %v", err)
	}
	for _, codec := range []string{"V_VP8", "A_OPUS"} {
		if tr, ok := in.Track(codec); !ok || tr.Frames == 0 {
			t.Errorf("restored recording has no %s frames: %+v", codec, in.Tracks)
		}
	}
	if in.Span() < 3*time.Second {
		t.Errorf("restored recording spans %v, recorded 4s", in.Span())
	}
}

// TestAuditRecordRestoreAfterPointInTimeRecovery: a database brought back
// by other means than `openvisit restore` (here a copy of it taken earlier,
// as a point-in-time recovery gives) fails verify, which names the lost
// entries as truncated, until `openvisit audit record-restore` records the
// restore; then verify passes and names them as lost.
func TestAuditRecordRestoreAfterPointInTimeRecovery(t *testing.T) {
	d := newDrill(t)
	d.env(d.liveURL, d.liveDir)
	live := d.open(d.liveURL)
	d.auditHistory(live, "rec-1")
	d.checkpoint(live)
	recovered := d.head(live)
	live.Close()
	d.copyDatabase(d.liveURL, d.restoredURL) // the recovery point
	live = d.open(d.liveURL)
	d.auditHistory(live, "rec-1")
	d.checkpoint(live)
	lostTo := d.head(live)
	live.Close()

	d.env(d.restoredURL, d.liveDir) // same keys: only the database went back in time
	var out bytes.Buffer
	if err := run([]string{"audit", "verify"}, &out, io.Discard); !errors.Is(err, audit.ErrTampered) ||
		!strings.Contains(out.String(), "truncated") {
		t.Fatalf("verify before the restore is recorded: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"audit", "record-restore", "--backup-id", "pitr-test"}, &out, io.Discard); err != nil {
		t.Fatalf("record-restore: %v\n%s", err, out.String())
	}
	d.verify(recovered, lostTo)
}

// copyDatabase replaces the database at to with a copy of the one at from
// (which must have no connections).
func (d *drill) copyDatabase(from, to string) {
	t, ctx := d.t, context.Background()
	t.Helper()
	name := func(s string) string {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	}
	conn, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{"DROP DATABASE " + name(to) + " WITH (FORCE)", "CREATE DATABASE " + name(to) + " TEMPLATE " + name(from)} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
