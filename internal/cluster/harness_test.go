// Package cluster tests OpenVisit scaled out: an api node and media nodes
// as separate `openvisit serve --roles …` processes sharing one PostgreSQL,
// configured only through the environment, as an operator would run them.
package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/auth/csrf"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/e2e"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/signaling"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds the openvisit binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ov-cluster-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "openvisit")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/openvisit/openvisit/cmd/openvisit")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// hostIP is a non-loopback address of this machine: media nodes run with
// production ICE settings (no loopback candidates), so peers meet on it.
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	testenv.Missing(t, "a non-loopback IPv4 interface (media nodes do not offer loopback ICE candidates)")
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// cluster is one database, its keys, and the processes serving it.
type cluster struct {
	t        *testing.T
	dsn      string
	dir      string
	pool     *pgxpool.Pool
	pubKey   string // token public key (base64), for media-only nodes
	signKey  string // file with the token signing seed
	secret   string // file with the shared auth secret
	authKey  []byte
	apiURL   string
	mu       sync.Mutex
	procs    []*proc
	hbEvery  string
	deadAftr string
	anchors  string // the audit anchor bucket
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dsn: testenv.Postgres(t), dir: t.TempDir(), hbEvery: "300ms", deadAftr: "2s",
		anchors: "ov-anchors-" + string(ids.NewParticipantID())[:8]}
	ctx := context.Background()
	var err error
	// Migrate first, so that processes starting at once do not all wait on
	// the migration lock.
	if c.pool, err = db.Open(ctx, c.dsn, 4); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.pool.Close)
	if _, err := db.Migrate(ctx, c.pool); err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	c.pubKey = base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	c.signKey = filepath.Join(c.dir, "token-signing.key")
	c.authKey = make([]byte, 32)
	_, _ = rand.Read(c.authKey)
	c.secret = filepath.Join(c.dir, "auth-secret.key")
	for path, b := range map[string][]byte{c.signKey: seed, c.secret: c.authKey} {
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.killAll)
	return c
}

// proc is one openvisit process.
type proc struct {
	name string
	url  string // https://127.0.0.1:port
	cmd  *exec.Cmd
	logs *testenv.SyncBuffer
	done chan struct{}
	err  error
}

// start runs `openvisit serve --roles roles` as node name and waits until
// /readyz answers. The API's origin is the only browser origin media nodes
// accept.
func (c *cluster) start(name, roles string, extra ...string) *proc {
	t := c.t
	t.Helper()
	port := freePort(t)
	p := &proc{name: name, url: fmt.Sprintf("https://127.0.0.1:%d", port), logs: &testenv.SyncBuffer{}, done: make(chan struct{})}
	if strings.Contains(roles, "api") {
		c.apiURL = p.url
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"OPENVISIT_ENVIRONMENT=development",
		"OPENVISIT_DATABASE_URL=" + c.dsn,
		"OPENVISIT_DATABASE_MAX_CONNS=4",
		"OPENVISIT_DATA_DIR=" + filepath.Join(c.dir, name),
		fmt.Sprintf("OPENVISIT_LISTEN_ADDR=127.0.0.1:%d", port),
		"OPENVISIT_PUBLIC_URL=" + p.url,
		"OPENVISIT_ROLES=" + roles,
		"OPENVISIT_SFU_NODE_ID=" + name,
		"OPENVISIT_SFU_UDP_ADDR=0.0.0.0:0",
		"OPENVISIT_AUTH_SECRET_KEY_FILE=" + c.secret,
		"OPENVISIT_CLUSTER_HEARTBEAT_INTERVAL=" + c.hbEvery,
		"OPENVISIT_CLUSTER_DEAD_AFTER=" + c.deadAftr,
		"OPENVISIT_LOG_FORMAT=text",
		"OPENVISIT_HTTP_OPS_ADDR=127.0.0.1:0", // several processes share the machine
		// One anchor bucket per cluster: the dev MinIO is shared by every
		// test and outlives them.
		"OPENVISIT_AUDIT_ANCHOR_BUCKET=" + c.anchors,
	}
	if strings.Contains(roles, "api") {
		// Pages may open WebSockets to the media nodes (other origins).
		env = append(env, "OPENVISIT_TOKEN_SIGNING_KEY_FILE="+c.signKey, "OPENVISIT_CLUSTER_MEDIA_CONNECT_SRC=wss://127.0.0.1:*")
	} else {
		env = append(env, "OPENVISIT_TOKEN_PUBLIC_KEY="+c.pubKey, "OPENVISIT_CLUSTER_ALLOWED_ORIGINS="+c.apiURL)
	}
	env = append(env, extra...)
	p.cmd = exec.Command(binary(t), "serve")
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited at start: %v\n%s", name, p.err, p.logs)
		default:
		}
		if resp, err := insecure.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 90 s\n%s", name, p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// wait waits for the process to exit.
func (p *proc) wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (c *cluster) killAll() {
	c.mu.Lock()
	procs := c.procs
	c.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Kill()
		p.wait(10 * time.Second)
		if c.t.Failed() || os.Getenv("OV_E2E_LOG") != "" {
			c.t.Logf("%s log:\n%s", p.name, p.logs)
		}
	}
}

// nodeOf returns the media node a visit is placed on.
func (c *cluster) nodeOf(v ids.VisitID) string {
	var n string
	_ = c.pool.QueryRow(context.Background(), `SELECT COALESCE(sfu_node_id, '') FROM visits WHERE id = $1`, string(v)).Scan(&n)
	return n
}

// waitLoad waits until node's heartbeat reports rooms.
func (c *cluster) waitRooms(node string, rooms int, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("%s to report %d rooms", node, rooms), timeout, func() bool {
		var n int
		err := c.pool.QueryRow(context.Background(), `SELECT rooms FROM sfu_nodes WHERE id = $1`, node).Scan(&n)
		return err == nil && n == rooms
	})
}

var insecure = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the processes' self-signed development certificates
}}

// client calls the API node with a session made directly in the database.
type client struct {
	*e2e.APIClient
	t *testing.T
	c *cluster
}

func (c *cluster) session(s store.NewSession) *client {
	c.t.Helper()
	sealer, err := keys.NewSealer(c.authKey)
	if err != nil {
		c.t.Fatal(err)
	}
	token := func(hash []byte) string {
		tok, err := csrf.Token(sealer.MACKey(), hash)
		if err != nil {
			c.t.Fatal(err)
		}
		return tok
	}
	return &client{APIClient: e2e.NewAPIClient(c.t, c.apiURL, c.pool, s, token), t: c.t, c: c}
}

// provider makes a provider and a session for them.
func (c *cluster) provider() (*client, ids.UserID) {
	c.t.Helper()
	u, err := store.CreateUser(context.Background(), c.pool, fmt.Sprintf("dr-%d@clinic.test", time.Now().UnixNano()), "Dr Test", "provider")
	if err != nil {
		c.t.Fatal(err)
	}
	return c.session(store.NewSession{Kind: store.SessionStaff, UserID: u.ID}), u.ID
}

// patient adds an admitted patient participant to visit with a session.
func (c *cluster) patient(v ids.VisitID) *client {
	c.t.Helper()
	pid := ids.NewParticipantID()
	if _, err := c.pool.Exec(context.Background(), `INSERT INTO participants (id, visit_id, role, subject, state)
		VALUES ($1, $2, 'patient', $3, 'admitted')`, string(pid), string(v), string(pid)); err != nil {
		c.t.Fatal(err)
	}
	return c.session(store.NewSession{Kind: store.SessionPatient, VisitID: v, ParticipantID: pid})
}

func (cl *client) do(method, path string, body any) (int, []byte) {
	cl.t.Helper()
	r := cl.Do(method, path, body, nil)
	return r.Status, r.Body
}

// newVisit creates an unscheduled visit now.
func (cl *client) newVisit() ids.VisitID {
	cl.t.Helper()
	status, b := cl.do("POST", "/api/v1/visits", nil)
	if status != http.StatusCreated {
		cl.t.Fatalf("create visit = %d %s", status, b)
	}
	var v struct {
		ID ids.VisitID `json:"id"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
		cl.t.Fatalf("create visit: %s %v", b, err)
	}
	return v.ID
}

// join asks for a join grant.
func (cl *client) join(v ids.VisitID) signaling.JoinGrant {
	cl.t.Helper()
	status, b := cl.do("POST", "/api/v1/visits/"+string(v)+"/join", struct{}{})
	if status != http.StatusOK {
		cl.t.Fatalf("join = %d %s", status, b)
	}
	var g signaling.JoinGrant
	if err := json.Unmarshal(b, &g); err != nil {
		cl.t.Fatal(err)
	}
	return g
}

// oneMediaNode starts an api node and a media node m1 (with extra in its
// environment) and waits until m1 is live.
func oneMediaNode(t *testing.T, extra ...string) (*cluster, *proc) {
	t.Helper()
	hostIP(t)
	c := newCluster(t)
	c.start("api", "api")
	m1 := c.start("m1", "media", extra...)
	c.waitLive("m1")
	return c, m1
}

// visitWithPatient signs a provider in, makes a visit and signs its
// patient in.
func (c *cluster) visitWithPatient() (prov *client, v ids.VisitID, pat *client) {
	prov, _ = c.provider()
	v = prov.newVisit()
	return prov, v, c.patient(v)
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
