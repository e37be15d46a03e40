package recording

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/store"
)

// TestOpenReportsIntegrityFailures: every kind of damage to a stored chunk
// is an integrity failure (IsIntegrityFailure, naming the segment when one
// failed), found before anything is served where it can be (header, last
// segment, length) and at the damaged segment otherwise; storage that does
// not answer is not an integrity failure.
func TestOpenReportsIntegrityFailures(t *testing.T) {
	e := newRecoverEnv(t)
	ctx := context.Background()
	c := e.newCrashed("rec-a", 10*time.Second)
	other := e.newCrashed("rec-a", 10*time.Second)
	ch := c.chunk
	ch.Status, ch.Size = store.ChunkComplete, int64(len(c.ct))
	put := func(b []byte) {
		t.Helper()
		if _, err := e.objs.core.PutObject(ctx, e.objs.bucket, ch.ObjectKey, bytes.NewReader(b), int64(len(b)), "", "", minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	flip := func(i int) []byte { b := bytes.Clone(c.ct); b[i] ^= 1; return b }
	lastSeg := (len(c.ct) - 1) / testSeg
	for _, tc := range []struct {
		name    string
		object  []byte
		atOpen  bool
		segment int // the segment the error names; -1: none
	}{
		{"header", flip(10), true, -1},
		{"middle segment", flip(3*testSeg + 500), false, 3},
		{"last segment", flip(len(c.ct) - 5), true, lastSeg},
		{"cut within the last segment", c.ct[:len(c.ct)-100], true, lastSeg},
		{"cut before the last segment", c.ct[:lastSeg*testSeg-1000], true, lastSeg},
		{"another chunk's object", other.ct, true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			put(tc.object)
			pb, err := (&Library{Objects: e.objs, Keys: e.kf}).Open(ctx, c.rec, ch)
			if !tc.atOpen {
				if err != nil {
					t.Fatalf("Open: %v (the damage is not in what Open checks)", err)
				}
				_, err = io.ReadAll(pb)
				pb.Close()
			}
			if !IsIntegrityFailure(err) {
				t.Fatalf("err = %v, want an integrity failure", err)
			}
			seg, ok := FailedSegment(err)
			if tc.segment >= 0 && (!ok || seg != uint64(tc.segment)) {
				t.Errorf("err %v names segment %d (%v), want %d", err, seg, ok, tc.segment)
			}
		})
	}
	put(c.ct)
	if _, err := (&Library{Objects: e.objs, Keys: e.kf}).Open(ctx, c.rec, ch); err != nil {
		t.Fatalf("the undamaged object: %v", err)
	}
	marked := ch
	now := time.Now()
	marked.IntegrityFailedAt = &now
	if _, err := (&Library{Objects: e.objs, Keys: e.kf}).Open(ctx, c.rec, marked); !errors.Is(err, ErrIntegrityFailed) || !IsIntegrityFailure(err) {
		t.Errorf("a chunk marked failed: %v, want ErrIntegrityFailed", err)
	}
	// Storage down is not an integrity failure.
	down, err := NewObjects(config.S3{Endpoint: "127.0.0.1:1", AccessKey: "x", SecretKey: "x", Region: "us-east-1", Bucket: e.objs.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Library{Objects: down, Keys: e.kf}).Open(ctx, c.rec, ch); err == nil || IsIntegrityFailure(err) {
		t.Errorf("storage down: %v, want an error that is not an integrity failure", err)
	}
}
