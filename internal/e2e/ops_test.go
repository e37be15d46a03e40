package e2e

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/httpx"
)

// TestServerOperations checks the operational surface of a real process:
// HTTPS only with a certificate for its host, health and readiness, the
// openvisit_ metrics (on the operational listener), security headers on every kind of response, JSON
// errors for unknown API routes, and no secrets in the log.
func TestServerOperations(t *testing.T) {
	s := StartServer(t, nil)
	client := hostCheckingClient()
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := getBody(t, client, s.URL, path); resp.StatusCode != 200 {
			t.Errorf("%s = %d %s", path, resp.StatusCode, body)
		}
	}
	checkOpsMetrics(t, s)

	for _, path := range []string{"/", "/call", "/api/v1/no-such-thing", "/healthz"} {
		resp, _ := getBody(t, client, s.URL, path)
		if got := resp.Header.Get("Content-Security-Policy"); got != httpx.CSP {
			t.Errorf("%s: CSP = %q", path, got)
		}
		for _, h := range []string{"Strict-Transport-Security", "X-Content-Type-Options", "Referrer-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s: missing %s", path, h)
			}
		}
	}

	resp, body := getBody(t, client, s.URL, "/api/v1/no-such-thing")
	var e httpx.Body
	if resp.StatusCode != 404 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "not_found" {
		t.Errorf("unknown API route = %d %s, want 404 JSON not_found", resp.StatusCode, body)
	}

	// Plain HTTP to the HTTPS port gets nowhere.
	plain := &http.Client{Timeout: 5 * time.Second}
	if r, err := plain.Get(strings.Replace(s.URL, "https://", "http://", 1) + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain HTTP was served")
		}
	}
	checkRedeemNotLogged(t, client, s)
}

// hostCheckingClient trusts the server's self-signed certificate but
// checks that it names 127.0.0.1.
func hostCheckingClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // self-signed; the SAN is checked below
			VerifyConnection: func(cs tls.ConnectionState) error {
				return cs.PeerCertificates[0].VerifyHostname("127.0.0.1")
			},
		}},
	}
}

// getBody GETs path from base and returns the response with its body
// read.
func getBody(t *testing.T, client *http.Client, base, path string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// checkOpsMetrics: metrics are on the operational listener (plain HTTP),
// not on the public one, with the SFU's series.
func checkOpsMetrics(t *testing.T, s *Server) {
	t.Helper()
	opsResp, err := http.Get("http://" + s.App.OpsAddr().String() + "/metrics")
	if err != nil {
		t.Fatalf("ops /metrics: %v", err)
	}
	b, _ := io.ReadAll(opsResp.Body)
	opsResp.Body.Close()
	metrics := string(b)
	if opsResp.StatusCode != 200 {
		t.Fatalf("ops /metrics = %d", opsResp.StatusCode)
	}
	for _, series := range []string{"openvisit_sfu_rooms", "openvisit_sfu_participants",
		"openvisit_sfu_forwarded_packets_total", "openvisit_sfu_forwarded_bytes_total"} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// checkRedeemNotLogged: redeeming a link puts neither the code nor the
// token in the log.
func checkRedeemNotLogged(t *testing.T, client *http.Client, s *Server) {
	t.Helper()
	link := s.DemoLinks(t)[0]
	code := link[strings.Index(link, "#code=")+len("#code="):]
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/demo/redeem", strings.NewReader(`{"code":"`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.URL)
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var grant struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&grant)
	r.Body.Close()
	if r.StatusCode != 200 || grant.Token == "" {
		t.Fatalf("redeem = %d", r.StatusCode)
	}
	logs := s.Logs()
	if strings.Contains(logs, code) || strings.Contains(logs, grant.Token) {
		t.Error("the server log contains a demo code or a join token")
	}
}
