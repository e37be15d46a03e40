package signin

import (
	"sync"
	"time"

	"github.com/openvisit/openvisit/internal/auth/throttle"
)

// throttleMemory keeps throttle state for sign-in attempts at addresses
// that have no account, bounded in size.
type throttleMemory struct {
	mu  sync.Mutex
	m   map[string]throttle.State
	max int
}

func newThrottleMemory(max int) *throttleMemory {
	return &throttleMemory{m: make(map[string]throttle.State), max: max}
}

func (t *throttleMemory) get(k string) throttle.State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[k]
}

func (t *throttleMemory) fail(k string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[k]; !ok && len(t.m) >= t.max {
		for old := range t.m { // drop an arbitrary entry to stay bounded
			delete(t.m, old)
			break
		}
	}
	t.m[k] = throttle.OnFailure(t.m[k], now)
}
