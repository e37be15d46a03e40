package e2e

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/testenv"
	"github.com/openvisit/openvisit/signaling"
)

// recordingServer starts a demo server with every role, recording into a
// fresh bucket of s3.
func recordingServer(t *testing.T, s3 testenv.S3, tune func(*config.Config)) *Server {
	t.Helper()
	return StartServer(t, recordingConfig(s3, tune))
}

func recPool(t *testing.T, srv *Server) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), srv.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// apiClient is the APIClient of the recording tests.
type apiClient = APIClient

type apiResponse = APIResponse

func newAPIClient(t *testing.T, srv *Server, pool *pgxpool.Pool, sess store.NewSession) *apiClient {
	t.Helper()
	return NewAPIClient(t, srv.URL, pool, sess, srv.App.Signaling().CSRFToken)
}

// staffClient makes a staff user of role and a session for it.
func staffClient(t *testing.T, srv *Server, pool *pgxpool.Pool, role string) (*apiClient, ids.UserID) {
	t.Helper()
	u, err := store.CreateUser(context.Background(), pool, role+"-"+hex.EncodeToString([]byte(t.Name()))[:8]+fmt.Sprint(time.Now().UnixNano())+"@clinic.test", "Test "+role, role)
	if err != nil {
		t.Fatal(err)
	}
	return newAPIClient(t, srv, pool, store.NewSession{Kind: store.SessionStaff, UserID: u.ID}), u.ID
}

func (c *apiClient) do(method, path string, body any, hdr map[string]string) apiResponse {
	c.t.Helper()
	return c.Do(method, path, body, hdr)
}

func (c *apiClient) must(method, path string, body any, want int) apiResponse {
	c.t.Helper()
	r := c.do(method, path, body, nil)
	if r.Status != want {
		c.t.Fatalf("%s %s = %d %s, want %d", method, path, r.Status, r.Body, want)
	}
	return r
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// demoVisit returns the demo visit's ID and its participants by role.
func demoVisit(t *testing.T, pool *pgxpool.Pool) (ids.VisitID, map[string]ids.ParticipantID) {
	t.Helper()
	ctx := context.Background()
	var v string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM visits WHERE demo`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT id::text, role FROM participants WHERE visit_id = $1`, v)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]ids.ParticipantID{}
	for rows.Next() {
		var id, role string
		if err := rows.Scan(&id, &role); err != nil {
			t.Fatal(err)
		}
		out[role] = ids.ParticipantID(id)
	}
	return ids.VisitID(v), out
}

// waitFor polls cond every 200 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// newPublisher redeems a demo link and joins as a Pion peer publishing
// synthetic VP8 (frameSize bytes a frame) and Opus on loopback.
func newPublisher(t *testing.T, srv *Server, link string, frameSize int) *Peer {
	t.Helper()
	return JoinPeer(t, redeemDemo(t, srv, link), PeerOptions{ConfigureWebRTC: LoopbackWebRTC, FrameSize: frameSize})
}

// redeemDemo redeems a demo link for a join grant.
func redeemDemo(t *testing.T, srv *Server, link string) signaling.JoinGrant {
	t.Helper()
	code := link[strings.Index(link, "#code=")+len("#code="):]
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // self-signed test certificate
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/demo/redeem", strings.NewReader(`{"code":"`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", srv.URL)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var grant signaling.JoinGrant
	err = json.NewDecoder(resp.Body).Decode(&grant)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %v", resp.StatusCode, err)
	}
	return grant
}

// ownMinIO runs a throwaway MinIO on a free port (the dev one is shared
// with other engineers' tests), so that a test may stop and restart it. It
// serves HTTPS with a certificate from its own local CA, as the dev one does.
type ownMinIO struct {
	t     *testing.T
	bin   string
	dir   string
	certs string // MinIO's --certs-dir
	ca    string // the CA's PEM
	addr  string
	cmd   *exec.Cmd
}

const ownMinIOUser, ownMinIOPass = "ov-test", "ov-test-secret"

func startOwnMinIO(t *testing.T) *ownMinIO {
	t.Helper()
	bin := os.Getenv("OV_DEV_MINIO")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "openvisit", "bin", "minio")
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "the MinIO binary ("+bin+")")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ca := t.TempDir()
	if _, err := certs.LocalCA(ca, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	m := &ownMinIO{t: t, bin: bin, dir: t.TempDir(), certs: t.TempDir(), ca: filepath.Join(ca, certs.CAFile), addr: addr}
	for src, dst := range map[string]string{certs.ServerCertFile: "public.crt", certs.ServerKeyFile: "private.key"} {
		b, err := os.ReadFile(filepath.Join(ca, src))
		if err == nil {
			err = os.WriteFile(filepath.Join(m.certs, dst), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *ownMinIO) s3() testenv.S3 {
	return testenv.S3{Endpoint: m.addr, AccessKey: ownMinIOUser, SecretKey: ownMinIOPass, UseTLS: true, CAFile: m.ca}
}

func (m *ownMinIO) start() {
	m.t.Helper()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	console := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(m.bin, "server", "--address", m.addr, "--console-address", console, "--certs-dir", m.certs, "--quiet", m.dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+ownMinIOUser, "MINIO_ROOT_PASSWORD="+ownMinIOPass)
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.cmd = cmd
	waitFor(m.t, "own MinIO to answer", 30*time.Second, func() bool { return testenv.MinIOHealthy(m.s3()) == nil })
}

func (m *ownMinIO) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_, _ = m.cmd.Process.Wait()
	m.cmd = nil
}
