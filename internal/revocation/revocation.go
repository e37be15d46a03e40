// Package revocation ends media access that no longer holds, on whichever
// media node hosts it and whatever process made the change.
//
// There is one way a revocation travels. A change that ends someone's right
// to be in a call — a visit ended, cancelled or expired, a participant
// removed or turned away, a session signed out or expired, an account
// disabled, a break-glass grant run out — is a fact in PostgreSQL, and
// triggers on those tables (migration 0008) NOTIFY the openvisit_revoke
// channel when it commits. Every media node runs a Watcher: it LISTENs, and
// on a notice (and every second regardless, which catches a lost notice and
// the changes that are only the passing of time) it asks the database which
// of its live connections no longer hold (store.RevokedGrants, the one
// definition of "may still be in the call") and ends those. The control
// plane never calls into a media node; the same path serves one process or
// a cluster.
//
// While the database is unreachable, calls in progress go on (no check can
// fail them) and the checks resume by themselves; a node whose last
// successful check is older than StaleAfter admits no one new
// (Watcher.Burn), since it could not honour a revocation.
package revocation

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
)

// Channel is the PostgreSQL notification channel revocations are announced
// on (the triggers of migration 0008 write to it).
const Channel = "openvisit_revoke"

// Defaults.
const (
	// DefaultEvery is how often live connections are re-checked without a
	// notice: the bound on how late a lost notice, an idle timeout or a
	// database that comes back is honoured.
	DefaultEvery = time.Second
	// DefaultStaleAfter is how long after its last successful check a node
	// still admits new participants.
	DefaultStaleAfter = 10 * time.Second
)

// Media is the media node as the watcher sees it.
type Media interface {
	// LiveTokens appends the join token IDs of every participant on the
	// node to dst.
	LiveTokens(dst []string) []string
	// Revoke ends the participant admitted by tokenID.
	Revoke(tokenID string) bool
}

// Params configures a Watcher.
type Params struct {
	Pool   *pgxpool.Pool
	Limits store.SessionLimits
	// Burner burns join tokens (single use) before Burn checks them.
	Burner     token.Burner
	Every      time.Duration // default DefaultEvery
	StaleAfter time.Duration // default DefaultStaleAfter
	Logger     *slog.Logger
	// Now is the clock sessions are judged by (idle and absolute
	// timeouts); the staleness bound always uses the real clock.
	Now func() time.Time
}

// Watcher keeps one media node's live connections in step with the
// database. Lifecycle: New → Run (until its ctx ends); Burn may be called
// at any time and refuses until the first check has succeeded.
type Watcher struct {
	p    Params
	log  *slog.Logger
	wake chan struct{}
	// lastOK is when the last check succeeded (nil: never), on the real,
	// monotonic clock.
	lastOK atomic.Pointer[time.Time]
}

// New returns a Watcher (no I/O).
func New(p Params) *Watcher {
	if p.Every <= 0 {
		p.Every = DefaultEvery
	}
	if p.StaleAfter <= 0 {
		p.StaleAfter = DefaultStaleAfter
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return &Watcher{p: p, log: p.Logger.With("component", "revocation"), wake: make(chan struct{}, 1)}
}

// Run listens for notices and re-checks media's connections until ctx
// ends.
func (w *Watcher) Run(ctx context.Context, media Media) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.listenLoop(ctx)
	}()
	w.checkLoop(ctx, media)
	<-done
}

func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default: // a check is already due: it will see this change too
	}
}

func (w *Watcher) checkLoop(ctx context.Context, media Media) {
	t := time.NewTicker(w.p.Every)
	defer t.Stop()
	failing := false
	for {
		err := w.Check(ctx, media)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			w.log.Warn("revocation check failed; calls go on, new joins stop after the stale bound", "err", err)
		case err == nil && failing:
			w.log.Info("revocation checks resumed")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// Check asks the database once which of media's live connections no longer
// hold and ends them.
func (w *Watcher) Check(ctx context.Context, media Media) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	live := media.LiveTokens(nil)
	if len(live) == 0 {
		// Nothing to end; still prove the database answers (Fresh).
		if err := w.p.Pool.Ping(ctx); err != nil {
			return err
		}
		w.ok()
		return nil
	}
	revoked, err := store.RevokedGrants(ctx, w.p.Pool, live, w.p.Limits, w.p.Now())
	if err != nil {
		return err
	}
	w.ok()
	for jti, why := range revoked {
		if media.Revoke(jti) {
			w.log.Info("media access revoked", "reason", why)
		}
	}
	return nil
}

func (w *Watcher) ok() {
	now := time.Now()
	w.lastOK.Store(&now)
}

// Fresh reports whether the last successful check is recent enough for
// the node to admit new participants.
func (w *Watcher) Fresh() bool {
	last := w.lastOK.Load()
	return last != nil && time.Since(*last) <= w.p.StaleAfter
}

// Burn is the media node's admission (a token.Burner): the node must be
// able to honour revocations (Fresh), the token is burned (single use), and
// its holder must still be allowed in — the same check the watcher applies
// to live connections, so a token minted just before a revocation cannot
// be used after it.
func (w *Watcher) Burn(ctx context.Context, c token.Claims) error {
	if !w.Fresh() {
		return token.ErrUnavailable
	}
	if err := w.p.Burner.Burn(ctx, c); err != nil {
		return err
	}
	revoked, err := store.RevokedGrants(ctx, w.p.Pool, []string{c.ID}, w.p.Limits, w.p.Now())
	if err != nil {
		return err
	}
	if why := revoked[c.ID]; why != "" {
		return errors.Join(token.ErrRevoked, errors.New("revocation: "+why))
	}
	return nil
}

// listenLoop holds a LISTEN connection, poking the checker on every notice,
// and reconnects with backoff when it drops (poking once more on return:
// notices sent while it was away are lost, the state is not).
func (w *Watcher) listenLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		w.log.Debug("revocation listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (w *Watcher) listen(ctx context.Context) error {
	conn, err := w.p.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries LISTEN state: never return it to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		return err
	}
	w.poke()
	for {
		if _, err := pc.WaitForNotification(ctx); err != nil {
			return err
		}
		w.poke()
	}
}
