package signaling

import (
	"context"
	"sync"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// Visit changes (waiting room, admission, status) are announced with
// PostgreSQL NOTIFY inside the transaction that makes them, so every
// control-plane process hears about them on commit, whichever process made
// the change. Subscribers are only told "visit V changed" and re-read its
// state: a missed or merged notification loses nothing.

// notifyVisit queues a change notice for visit v (store.NotifyVisit).
func notifyVisit(ctx context.Context, db store.DBTX, v ids.VisitID) error {
	return store.NotifyVisit(ctx, db, v)
}

// hub fans visit notices out to local subscribers (SSE streams).
type hub struct {
	mu   sync.Mutex
	subs map[ids.VisitID]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: make(map[ids.VisitID]map[chan struct{}]struct{})} }

// subscribe returns a channel that receives (coalesced) notices for v.
func (h *hub) subscribe(v ids.VisitID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[v] == nil {
		h.subs[v] = make(map[chan struct{}]struct{})
	}
	h.subs[v][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[v], ch)
		if len(h.subs[v]) == 0 {
			delete(h.subs, v)
		}
		h.mu.Unlock()
	}
}

func (h *hub) publish(v ids.VisitID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[v] {
		select {
		case ch <- struct{}{}:
		default: // a notice is already pending: the reader will re-read anyway
		}
	}
}

func (h *hub) publishAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.subs {
		for ch := range m {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Run listens for visit notices until ctx ends, reconnecting (with
// backoff) when the database connection drops; after a reconnect every
// subscriber re-reads, covering notices sent while it was away.
func (s *Server) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.p.DB.ListenVisits(ctx, s.events.publishAll, s.events.publish)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("visit events: listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		s.events.publishAll()
	}
}
