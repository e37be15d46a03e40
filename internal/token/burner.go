package token

import (
	"context"
	"sync"
	"time"
)

// Burner records that a token ID has been used. Burn returns ErrUsed when
// the ID was burned before. Implementations must be safe for concurrent use.
type Burner interface {
	Burn(ctx context.Context, c Claims) error
}

// MemoryBurner remembers burned IDs in memory until their tokens expire.
// It suits a single node; the control plane's Postgres burner survives a
// restart.
type MemoryBurner struct {
	mu   sync.Mutex
	used map[string]time.Time
	now  func() time.Time
	// max bounds memory: at most this many unexpired IDs are kept; beyond
	// it, Burn refuses (fail closed) rather than forget.
	max int
}

// NewMemoryBurner returns a burner holding at most max IDs. now may be nil.
func NewMemoryBurner(max int, now func() time.Time) *MemoryBurner {
	if now == nil {
		now = time.Now
	}
	return &MemoryBurner{used: make(map[string]time.Time), now: now, max: max}
}

// Burn implements Burner.
func (b *MemoryBurner) Burn(_ context.Context, c Claims) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.used[c.ID]; ok {
		return ErrUsed
	}
	if len(b.used) >= b.max {
		b.sweepLocked()
		if len(b.used) >= b.max {
			return ErrUsed
		}
	}
	// Keep the ID a little past expiry to cover the verifier's clock skew.
	b.used[c.ID] = c.Expiry().Add(time.Minute)
	return nil
}

func (b *MemoryBurner) sweepLocked() {
	now := b.now()
	for id, until := range b.used {
		if now.After(until) {
			delete(b.used, id)
		}
	}
}
