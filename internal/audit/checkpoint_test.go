package audit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type failingAnchor struct{ err error }

func (f failingAnchor) Put(context.Context, string, []byte) (string, error) { return "", f.err }

// A checkpoint the bucket refused is still recorded in Postgres (not
// anchored), reported to OnFailure, and anchored by a later attempt.
func TestCheckpointAnchorFailure(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	key := newKey(t)
	appendN(t, New(pool), 3)
	down := errors.New("bucket unreachable")
	var mu sync.Mutex
	var failures []error
	c, err := NewCheckpointer(CheckpointerParams{Pool: pool, Key: key, Anchor: failingAnchor{down},
		OnFailure: func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckpointNow(ctx); !errors.Is(err, down) {
		t.Fatalf("CheckpointNow: %v, want the bucket's error", err)
	}
	mu.Lock()
	if len(failures) != 1 || !errors.Is(failures[0], down) {
		t.Fatalf("OnFailure got %v", failures)
	}
	mu.Unlock()
	var n, anchored int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(anchored_at) FROM audit_checkpoints`).Scan(&n, &anchored); err != nil || n != 1 || anchored != 0 {
		t.Fatalf("checkpoint rows %d (anchored %d), %v; want 1 unanchored", n, anchored, err)
	}
	verifyOK(t, pool, pubOf(key))

	// Run retries: the head is not anchored yet.
	c.p.Anchor = &memAnchor{}
	c.p.Interval = time.Hour
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(rctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for anchored == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		_ = pool.QueryRow(ctx, `SELECT count(anchored_at) FROM audit_checkpoints`).Scan(&anchored)
	}
	cancel()
	<-done
	if anchored != 1 {
		t.Fatalf("anchored checkpoints = %d, want 1 after Run", anchored)
	}
}

type memAnchor struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (m *memAnchor) Put(_ context.Context, key string, body []byte) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[key] = body
	return "v1", nil
}
