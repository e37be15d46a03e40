package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestClientAddr(t *testing.T) {
	gin.SetMode(gin.TestMode)
	tests := []struct {
		name    string
		trusted []string
		peer    string
		xff     []string // X-Forwarded-For header lines
		realIP  string
		want    string
	}{
		{"no proxies: the peer", nil, "192.0.2.10:4000", []string{"203.0.113.9"}, "203.0.113.8", "192.0.2.10"},
		{"untrusted peer: the peer", []string{"10.0.0.0/8"}, "192.0.2.10:4000", []string{"203.0.113.9"}, "", "192.0.2.10"},
		{"trusted proxy: its client", []string{"10.0.0.0/8"}, "10.1.2.3:4000", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"forged entry before the proxy's: ignored", []string{"10.0.0.0/8"}, "10.1.2.3:4000", []string{"203.0.113.9, 198.51.100.7"}, "", "198.51.100.7"},
		{"chain of trusted proxies", []string{"10.0.0.0/8"}, "10.1.2.3:4000", []string{"203.0.113.9", "198.51.100.7, 10.9.9.9"}, "", "198.51.100.7"},
		{"X-Real-IP never read", []string{"10.0.0.0/8"}, "10.1.2.3:4000", nil, "203.0.113.8", "10.1.2.3"},
		{"garbage header: the proxy", []string{"10.0.0.0/8"}, "10.1.2.3:4000", []string{"not-an-ip"}, "", "10.1.2.3"},
		{"ipv4-mapped peer is written as ipv4", nil, "[::ffff:192.0.2.10]:4000", nil, "", "192.0.2.10"},
		{"ipv6 proxy", []string{"fd00::/8"}, "[fd00::1]:4000", []string{"2001:db8::7"}, "", "2001:db8::7"},
		{"unparsable peer", nil, "somewhere", nil, "", "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prefixes []netip.Prefix
			for _, s := range tt.trusted {
				prefixes = append(prefixes, netip.MustParsePrefix(s))
			}
			r := gin.New()
			if err := TrustProxies(r, prefixes); err != nil {
				t.Fatal(err)
			}
			var got string
			r.GET("/", func(c *gin.Context) { got = ClientIP(c) })
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				req.Header.Set("X-Real-IP", tt.realIP)
			}
			r.ServeHTTP(httptest.NewRecorder(), req)
			if got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUserAgentStorable(t *testing.T) {
	for _, ua := range []string{"Mozilla/5.0", "bad \xff\xfe bytes", strings.Repeat("é", 400), "nul\x00inside"} {
		got := CleanText(ua, maxUserAgent)
		if !utf8.ValidString(got) || strings.ContainsRune(got, 0) || len(got) > maxUserAgent+utf8.UTFMax {
			t.Errorf("CleanText(%q) = %q: not storable", ua, got)
		}
	}
	if got := CleanText("Mozilla/5.0", maxUserAgent); got != "Mozilla/5.0" {
		t.Errorf("a clean agent changed: %q", got)
	}
}

func TestCheckParams(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET("/items/:id", func(c *gin.Context) {
		if err := CheckParams(c); err != nil {
			Abort(c, slog.New(slog.DiscardHandler), err)
			return
		}
		c.Status(http.StatusNoContent)
	})
	for path, want := range map[string]int{
		"/items/abc?q=caf%C3%A9": 204,
		"/items/a%00b":           400,
		"/items/a%FFb":           400,
		"/items/abc?q=a%00b":     400,
		"/items/abc?q%00=1":      400,
		"/items/abc?q=%FF":       400,
		"/items/abc?q=%zz":       400,
		"/items/abc?a=1;b=2":     400,
	} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("%s = %d, want %d", path, w.Code, want)
		}
		if want == 400 && !strings.Contains(w.Body.String(), `"bad_parameter"`) {
			t.Errorf("%s: body %s, want code bad_parameter", path, w.Body)
		}
	}
}

// A database that cannot be reached answers 503 service_unavailable with
// Retry-After, whether the handler passed the raw error or wrapped it in
// an "unavailable" of its own; a constraint violation stays a 500.
func TestAbortClassifiesUnreachableDatabase(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantRetry  bool
	}{
		{"connection refused", fmt.Errorf("store: visit: %w", refused), 503, CodeUnavailable, true},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, 503, CodeUnavailable, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, 503, CodeUnavailable, true},
		{"conn closed", fmt.Errorf("tx: %w", pgconn.ErrConnClosed), 503, CodeUnavailable, true},
		{"audit write with the database down", Wrap(KindUnavailable, "audit_unavailable", "no audit", refused), 503, CodeUnavailable, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, 500, "internal", false},
		{"nul in text", &pgconn.PgError{Code: "22021"}, 400, "bad_text", false},
		{"plain bug", errors.New("nil map"), 500, "internal", false},
		{"own unavailable", E(KindUnavailable, "no_smtp", "no mail"), 503, "no_smtp", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := gin.New()
			r.Use(RequestIDs())
			r.GET("/", func(c *gin.Context) { Abort(c, slog.New(slog.NewTextHandler(&logs, nil)), tt.err) })
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			var b Body
			_ = json.Unmarshal(w.Body.Bytes(), &b)
			if w.Code != tt.wantStatus || b.Error.Code != tt.wantCode {
				t.Fatalf("= %d %s, want %d %s", w.Code, w.Body, tt.wantStatus, tt.wantCode)
			}
			if got := w.Header().Get("Retry-After"); (got != "") != tt.wantRetry {
				t.Errorf("Retry-After = %q, want one: %v", got, tt.wantRetry)
			}
			if strings.Contains(w.Body.String(), "refused") || strings.Contains(w.Body.String(), "SQLSTATE") {
				t.Errorf("the answer leaks the cause: %s", w.Body)
			}
		})
	}
}

// One definition of the client: outside this package no code reads the
// peer address, the forwarding headers or the raw User-Agent, so no path
// (a new handler, an audit call) can take a forged or unstorable value.
func TestOneClientDefinition(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{".ClientIP()", ".RemoteIP()", "RemoteAddr", ".UserAgent()", `"X-Forwarded-For"`, `"X-Real-Ip"`, `"X-Real-IP"`}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			filepath.Dir(path) == filepath.Join(root, "internal", "httpx") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forbidden {
			if bytes.Contains(b, []byte(f)) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s uses %s: use httpx.ClientIP / ClientAddr / UserAgent", rel, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
