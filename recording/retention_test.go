package recording

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
)

// The deletion job destroys the wrapped key (crypto-shredding) and the
// objects of recordings past retention, audited, and leaves alone those on
// legal hold or not yet due.
func TestRetentionDeletesKeyAndObjects(t *testing.T) {
	ctx := context.Background()
	env := newRetentionEnv(t)
	due, dueKey := env.stored(env.now.Add(-time.Minute), false)
	held, heldKey := env.stored(env.now.Add(-time.Minute), true)
	fresh, freshKey := env.stored(env.now.Add(time.Hour), false)
	// A recording still running is never deleted, even past its date.
	running := uuid.NewString()
	if err := store.CreateRecording(ctx, env.pool, store.NewRecording{ID: running, VisitID: env.visit, ParticipantID: ids.NewParticipantID(),
		KEKID: "kek-1", WrappedDEK: []byte("k"), SegmentSize: 1 << 20, StartedAt: env.now.Add(-time.Hour), DeleteAfter: env.now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := RunRetention(ctx, env.pool, env.objs, env.now, "test", log)
	if err != nil || n != 1 {
		t.Fatalf("RunRetention = %d, %v; want 1 deleted", n, err)
	}
	for _, c := range []struct {
		id, key string
		gone    bool
	}{{due, dueKey, true}, {held, heldKey, false}, {fresh, freshKey, false}} {
		env.checkRetained(c.id, c.key, c.gone)
	}
	var audited int
	_ = env.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND resource_id = $2`, ActionRecordingDelete, due).Scan(&audited)
	if audited != 1 {
		t.Errorf("%d deletion audit entries, want 1", audited)
	}
	// A second run finds nothing more to do.
	if n, err := RunRetention(ctx, env.pool, env.objs, env.now, "test", log); err != nil || n != 0 {
		t.Errorf("second run = %d, %v", n, err)
	}
}

// retentionEnv is a database with one visit and a fresh bucket.
type retentionEnv struct {
	t      *testing.T
	pool   *pgxpool.Pool
	bucket string
	objs   *Objects
	client *minio.Client
	visit  ids.VisitID
	now    time.Time
}

func newRetentionEnv(t *testing.T) *retentionEnv {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t, 4)
	s3 := testenv.MinIO(t).Config("ov-test-retention-" + uuid.NewString()[:8])
	objs, err := NewObjects(s3)
	if err != nil {
		t.Fatal(err)
	}
	if err := objs.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := objstore.New(s3)
	if err != nil {
		t.Fatal(err)
	}
	env := &retentionEnv{t: t, pool: pool, bucket: s3.Bucket, objs: objs, client: client, visit: ids.NewVisitID(), now: time.Now()}
	if err := store.CreateVisit(ctx, pool, env.visit, "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	return env
}

// stored makes a complete recording due for deletion at deleteAfter (on
// legal hold if hold) with one chunk in storage; it returns the
// recording's ID and the chunk's object key.
func (env *retentionEnv) stored(deleteAfter time.Time, hold bool) (id, key string) {
	t, ctx, now := env.t, context.Background(), env.now
	t.Helper()
	id, key = uuid.NewString(), "rec/"+uuid.NewString()
	if err := store.CreateRecording(ctx, env.pool, store.NewRecording{ID: id, VisitID: env.visit, ParticipantID: ids.NewParticipantID(),
		KEKID: "kek-1", WrappedDEK: []byte("wrapped-key-bytes"), SegmentSize: 1 << 20, StartedAt: now.Add(-time.Hour),
		DeleteAfter: deleteAfter}); err != nil {
		t.Fatal(err)
	}
	ended := now.Add(-30 * time.Minute)
	if err := store.SetRecordingStatus(ctx, env.pool, id, "complete", &ended); err != nil {
		t.Fatal(err)
	}
	if err := store.AddChunk(ctx, env.pool, store.Chunk{RecordingID: id, Seq: 0, ObjectKey: key, StartedAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.PutObject(ctx, env.bucket, key, bytes.NewReader([]byte("ciphertext")), 10, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if hold {
		if err := store.SetLegalHold(ctx, env.pool, id, true); err != nil {
			t.Fatal(err)
		}
	}
	return id, key
}

// checkRetained checks a recording after retention ran: if gone, deleted
// with its key destroyed and its object removed; otherwise untouched.
func (env *retentionEnv) checkRetained(id, key string, gone bool) {
	t, ctx := env.t, context.Background()
	t.Helper()
	var status string
	var kek *string
	var wrapped []byte
	if err := env.pool.QueryRow(ctx, `SELECT status, kek_id, wrapped_dek FROM recordings WHERE id = $1`, id).Scan(&status, &kek, &wrapped); err != nil {
		t.Fatal(err)
	}
	_, getErr := env.objs.Get(ctx, key)
	if gone {
		if status != "deleted" || kek != nil || wrapped != nil {
			t.Errorf("due recording: status %s, key %v/%x; want deleted with the key destroyed", status, kek, wrapped)
		}
		if getErr == nil {
			t.Error("due recording's object is still in storage")
		}
	} else {
		if status == "deleted" || wrapped == nil || getErr != nil {
			t.Errorf("recording %s (hold or not due) was touched: status %s, key present %v, object err %v", id, status, wrapped != nil, getErr)
		}
	}
}
