package throttle

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// LimiterParams configure a Limiter.
type LimiterParams struct {
	// Interval is the time to earn one token back (e.g. 6 s for 10/minute).
	Interval time.Duration
	// Burst is the bucket size: attempts allowed at once from a fresh key.
	Burst int
	// MaxKeys bounds memory: beyond it the least recently seen key is
	// forgotten (an entry is a few dozen bytes; 100 000 keys is a few MB).
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter is an in-memory token-bucket rate limiter keyed by a string
// (normally IPKey of the client address). It is safe for concurrent use and
// starts no goroutine: memory is bounded by evicting the least recently seen
// key when MaxKeys is reached. Evicting a key forgets its debt, so an
// attacker who can cycle through more than MaxKeys addresses gets fresh
// buckets; the per-account throttle is what holds then. Each process has its
// own Limiter: with N API nodes the effective limit is N times higher.
type Limiter struct {
	p     LimiterParams
	mu    sync.Mutex
	keys  map[string]*list.Element
	order *list.List // front = most recently seen
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

// NewLimiter returns a Limiter; non-positive parameters are raised to 1
// (Interval to one second).
func NewLimiter(p LimiterParams) *Limiter {
	if p.Interval <= 0 {
		p.Interval = time.Second
	}
	p.Burst = max(p.Burst, 1)
	p.MaxKeys = max(p.MaxKeys, 1)
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Limiter{p: p, keys: make(map[string]*list.Element), order: list.New()}
}

// Allow takes one token from key's bucket. When the bucket is empty it
// returns false and how long until a token is back.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()

	el, found := l.keys[key]
	if !found {
		if l.order.Len() >= l.p.MaxKeys {
			oldest := l.order.Back()
			l.order.Remove(oldest)
			delete(l.keys, oldest.Value.(*bucket).key)
		}
		el = l.order.PushFront(&bucket{key: key, tokens: float64(l.p.Burst), at: now})
		l.keys[key] = el
	} else {
		l.order.MoveToFront(el)
	}
	b := el.Value.(*bucket)
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(l.p.Burst), b.tokens+float64(elapsed)/float64(l.p.Interval))
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.p.Interval))
}

// Len returns how many keys are remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}

// IPKey returns the limiter key for a client address: the address itself for
// IPv4, its /64 prefix for IPv6 (one subscriber usually holds a whole /64).
// An IPv4-mapped IPv6 address counts as IPv4.
func IPKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
