package revocation_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/revocation"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/internal/token"
)

// media is a media node holding live connections by token ID: a small fake
// of the two methods the watcher uses.
type media struct {
	mu      sync.Mutex
	live    map[string]bool
	revoked chan string
}

func newMedia(tokens ...string) *media {
	m := &media{live: map[string]bool{}, revoked: make(chan string, 16)}
	for _, t := range tokens {
		m.live[t] = true
	}
	return m
}

func (m *media) LiveTokens(dst []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t := range m.live {
		dst = append(dst, t)
	}
	return dst
}

func (m *media) Revoke(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live[id] {
		return false
	}
	delete(m.live, id)
	m.revoked <- id
	return true
}

// waitRevoked fails t unless id is revoked within d.
func (m *media) waitRevoked(t *testing.T, id string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(d)
	for {
		select {
		case got := <-m.revoked:
			if got == id {
				return time.Since(start)
			}
		case <-deadline:
			t.Fatalf("token not revoked within %v", d)
		}
	}
}

func (m *media) isLive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[id]
}

var limits = store.SessionLimits{StaffIdle: 15 * time.Minute, PatientIdle: 30 * time.Minute, Absolute: 12 * time.Hour}

// fixture is a visit with a provider and an admitted patient, each with a
// session and a burned join token.
type fixture struct {
	visit                     ids.VisitID
	provider                  ids.UserID
	patient                   ids.ParticipantID
	providerToken, patientTok string
	providerSess, patientSess []byte
	providerPart              ids.ParticipantID
}

func newFixture(t *testing.T, ctx context.Context, pool *pgxpool.Pool, now time.Time) fixture {
	t.Helper()
	u, err := store.CreateUser(ctx, pool, "dr-"+string(ids.NewParticipantID())+"@clinic.test", "Dr", "provider")
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{visit: ids.NewVisitID(), provider: u.ID, patient: ids.NewParticipantID()}
	if err := store.CreateVisit(ctx, pool, f.visit, u.ID, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if f.providerPart, err = store.ProviderParticipant(ctx, pool, f.visit, u.ID, ids.NewParticipantID()); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO participants (id, visit_id, role, subject, state) VALUES ($1, $2, 'patient', $3, 'admitted')`,
		string(f.patient), string(f.visit), string(f.patient)); err != nil {
		t.Fatal(err)
	}
	f.providerSess = newSession(t, ctx, pool, store.NewSession{Kind: store.SessionStaff, UserID: u.ID, Now: now})
	f.patientSess = newSession(t, ctx, pool, store.NewSession{Kind: store.SessionPatient, VisitID: f.visit, ParticipantID: f.patient, Now: now})
	f.providerToken = newToken(t, ctx, pool, f.visit, f.providerPart, "provider", f.providerSess)
	f.patientTok = newToken(t, ctx, pool, f.visit, f.patient, "patient", f.patientSess)
	return f
}

func newSession(t *testing.T, ctx context.Context, pool *pgxpool.Pool, s store.NewSession) []byte {
	t.Helper()
	_, hash, err := session.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	s.IDHash = hash
	if err := store.CreateSession(ctx, pool, s); err != nil {
		t.Fatal(err)
	}
	return hash
}

func newToken(t *testing.T, ctx context.Context, pool *pgxpool.Pool, v ids.VisitID, p ids.ParticipantID, role string, sess []byte) string {
	t.Helper()
	id := "jti-" + string(ids.NewParticipantID())
	if err := store.InsertJoinToken(ctx, pool, store.NewJoinToken{ID: id, VisitID: string(v), Participant: string(p),
		Role: role, ExpiresAt: time.Now().Add(time.Minute), SessionHash: sess}); err != nil {
		t.Fatal(err)
	}
	return id
}

func openPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func migrated(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	dsn := testenv.Postgres(t)
	pool := openPool(t, dsn)
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return dsn, pool
}

// run starts w over m until the test ends.
func run(t *testing.T, w *revocation.Watcher, m revocation.Media) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, m) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestWatcherRevokes: each kind of revocation written to the database ends
// exactly the connection it concerns, through the notice (well within the
// periodic re-check, which the test sets far away).
func TestWatcherRevokes(t *testing.T) {
	ctx := context.Background()
	_, pool := migrated(t)
	now := time.Now()
	cases := []struct {
		name   string
		victim func(fixture) string
		act    func(fixture) error
	}{
		{"patient removed", func(f fixture) string { return f.patientTok }, func(f fixture) error {
			return store.SetParticipantState(ctx, pool, f.visit, f.patient, "removed", now)
		}},
		{"session signed out", func(f fixture) string { return f.patientTok }, func(f fixture) error {
			_, err := store.RevokeSession(ctx, pool, f.patientSess, now, "logout")
			return err
		}},
		{"user disabled", func(f fixture) string { return f.providerToken }, func(f fixture) error {
			return store.SetDisabled(ctx, pool, f.provider, &now)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ctx, pool, now)
			m := newMedia(f.providerToken, f.patientTok)
			w := revocation.New(revocation.Params{Pool: pool, Limits: limits, Every: time.Hour})
			run(t, w, m)
			waitFresh(t, w)
			if err := tc.act(f); err != nil {
				t.Fatal(err)
			}
			m.waitRevoked(t, tc.victim(f), 2*time.Second)
			for _, other := range []string{f.providerToken, f.patientTok} {
				if other != tc.victim(f) && !m.isLive(other) {
					t.Error("another connection was revoked too")
				}
			}
		})
	}
}

func waitFresh(t *testing.T, w *revocation.Watcher) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !w.Fresh() {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never completed a check")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatcherSessionExpiry: an idle timeout is not an UPDATE, so no notice
// tells of it; the periodic re-check ends the call.
func TestWatcherSessionExpiry(t *testing.T) {
	ctx := context.Background()
	_, pool := migrated(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, ctx, pool, now)
	m := newMedia(f.providerToken, f.patientTok)
	w := revocation.New(revocation.Params{Pool: pool, Limits: limits, Every: 200 * time.Millisecond, Now: clock})
	run(t, w, m)
	waitFresh(t, w)
	mu.Lock()
	now = now.Add(16 * time.Minute) // past the staff idle timeout, within the patient's
	mu.Unlock()
	m.waitRevoked(t, f.providerToken, 2*time.Second)
	if !m.isLive(f.patientTok) {
		t.Error("the patient's call ended too (their idle timeout is 30 minutes)")
	}
}

// TestWatcherRidesOutDatabaseOutage: while the node cannot reach the
// database, calls go on; past the stale bound it admits no one; once the
// database answers again, a revocation made meanwhile applies within 2 s.
func TestWatcherRidesOutDatabaseOutage(t *testing.T) {
	ctx := context.Background()
	dsn, pool := migrated(t)
	proxy := newProxy(t, dsn)
	nodePool := openPool(t, proxy.dsn)
	f := newFixture(t, ctx, pool, time.Now())
	m := newMedia(f.providerToken, f.patientTok)
	const stale = time.Second
	w := revocation.New(revocation.Params{Pool: nodePool, Limits: limits, Every: 200 * time.Millisecond,
		StaleAfter: stale, Burner: token.NewPGBurner(nodePool)})
	run(t, w, m)
	waitFresh(t, w)

	proxy.cut()
	if _, err := store.RevokeSession(ctx, pool, f.patientSess, time.Now(), "logout"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(stale + 500*time.Millisecond)
	if !m.isLive(f.patientTok) || !m.isLive(f.providerToken) {
		t.Fatal("a call ended while the node could not reach the database")
	}
	claims := token.Claims{ID: "jti-new", Visit: f.visit, Participant: f.patient, Role: token.RolePatient, ExpiresAt: time.Now().Add(time.Minute).Unix()}
	if err := w.Burn(ctx, claims); !errors.Is(err, token.ErrUnavailable) {
		t.Fatalf("a join while the revocation check is stale: %v, want ErrUnavailable", err)
	}

	proxy.restore()
	took := m.waitRevoked(t, f.patientTok, 2*time.Second)
	t.Logf("revocation applied %v after the database came back", took.Round(time.Millisecond))
	if !m.isLive(f.providerToken) {
		t.Error("the provider's call ended too")
	}
}

// TestBurnRefusesRevoked: a token minted before a revocation cannot be used
// after it — the join applies the watcher's check.
func TestBurnRefusesRevoked(t *testing.T) {
	ctx := context.Background()
	_, pool := migrated(t)
	f := newFixture(t, ctx, pool, time.Now())
	w := revocation.New(revocation.Params{Pool: pool, Limits: limits, Burner: token.NewPGBurner(pool), Every: time.Hour})
	run(t, w, newMedia())
	waitFresh(t, w)
	// An unused token, minted while the patient was admitted.
	jti := "jti-unused-" + string(ids.NewParticipantID())
	if err := store.InsertJoinToken(ctx, pool, store.NewJoinToken{ID: jti, VisitID: string(f.visit), Participant: string(f.patient),
		Role: "patient", ExpiresAt: time.Now().Add(time.Minute), SessionHash: f.patientSess}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetParticipantState(ctx, pool, f.visit, f.patient, "turned_away", time.Now()); err != nil {
		t.Fatal(err)
	}
	claims := token.Claims{ID: jti, Visit: f.visit, Participant: f.patient, Role: token.RolePatient, ExpiresAt: time.Now().Add(time.Minute).Unix()}
	if err := w.Burn(ctx, claims); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("Burn of a turned-away patient's token: %v, want ErrRevoked", err)
	}
	if err := w.Burn(ctx, claims); !errors.Is(err, token.ErrUsed) {
		t.Fatalf("second Burn: %v, want ErrUsed (single use holds)", err)
	}
}

// proxy is a TCP proxy to the database that a test can cut (every
// connection dropped, new ones refused) and restore.
type proxy struct {
	dsn      string
	upstream string
	ln       net.Listener
	mu       sync.Mutex
	down     bool
	conns    map[net.Conn]bool
}

func newProxy(t *testing.T, dsn string) *proxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{upstream: u.Host, ln: ln, conns: map[net.Conn]bool{}}
	u.Host = ln.Addr().String()
	p.dsn = u.String()
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go pipe(c, up)
		go pipe(up, c)
	}
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
