package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func newRouter(logBuf *bytes.Buffer) *gin.Engine {
	gin.SetMode(gin.TestMode)
	log := slog.New(slog.NewTextHandler(logBuf, nil))
	r := gin.New()
	r.Use(RequestIDs(), Recover(log), SecurityHeaders(), LimitBody(64))
	r.POST("/api/echo", func(c *gin.Context) {
		var v struct {
			Name string `json:"name"`
		}
		if err := DecodeJSON(c, &v); err != nil {
			Abort(c, log, err)
			return
		}
		c.JSON(http.StatusOK, v)
	})
	r.GET("/api/fail", func(c *gin.Context) {
		Abort(c, log, errors.New("db password=hunter2 exploded"))
	})
	r.GET("/api/panic", func(c *gin.Context) { panic("boom") })
	return r
}

func do(r http.Handler, method, path, ctype, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func TestDecodeJSONErrors(t *testing.T) {
	r := newRouter(&bytes.Buffer{})
	tests := []struct {
		name       string
		ctype      string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"ok", "application/json", `{"name":"a"}`, 200, ""},
		{"unknown field", "application/json", `{"name":"a","role":"admin"}`, 400, "unknown_field"},
		{"malformed", "application/json", `{"name":`, 400, "bad_json"},
		{"trailing data", "application/json", `{"name":"a"}{"name":"b"}`, 400, "bad_json"},
		{"wrong type", "application/json", `{"name":7}`, 400, "bad_json"},
		{"content type", "text/plain", `{"name":"a"}`, 400, "bad_content_type"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, "body_too_large"},
		{"nul in a value", "application/json", `{"name":"a\u0000b"}`, 400, "bad_json"},
		{"nul in a name", "application/json", `{"na\u0000me":"a"}`, 400, "bad_json"},
		{"escaped backslash before u0000 is no nul", "application/json", `{"name":"\\u0000"}`, 200, ""},
		{"invalid utf-8", "application/json", "{\"name\":\"a\xffb\"}", 400, "bad_json"},
		{"lone surrogate", "application/json", `{"name":"\ud800"}`, 400, "bad_json"},
		{"duplicate key", "application/json", `{"name":"a","name":"b"}`, 400, "bad_json"},
		{"case variant key", "application/json", `{"Name":"a"}`, 400, "unknown_field"},
		{"case variant duplicate", "application/json", `{"name":"a","NAME":"b"}`, 400, "unknown_field"},
		{"empty body", "application/json", ``, 400, "bad_json"},
		{"two values", "application/json", `{} {}`, 400, "bad_json"},
		{"trailing garbage", "application/json", `{"name":"a"} x`, 400, "bad_json"},
		{"not an object", "application/json", `["a"]`, 400, "bad_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(r, "POST", "/api/echo", tt.ctype, tt.body)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantCode == "" {
				return
			}
			var b Body
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if b.Error.Code != tt.wantCode || b.Error.RequestID == "" {
				t.Fatalf("body = %+v, want code %q and a request id", b, tt.wantCode)
			}
			if strings.Contains(b.Error.Message, "name") || strings.Contains(b.Error.Message, "\\u0000") {
				t.Errorf("message %q names client data", b.Error.Message)
			}
		})
	}
}

func TestInternalErrorsHideDetail(t *testing.T) {
	var logs bytes.Buffer
	r := newRouter(&logs)
	for _, path := range []string{"/api/fail", "/api/panic"} {
		w := do(r, "GET", path, "", "")
		body, _ := io.ReadAll(w.Body)
		if w.Code != 500 || strings.Contains(string(body), "hunter2") || strings.Contains(string(body), "boom") {
			t.Errorf("%s: %d %s: want a generic 500", path, w.Code, body)
		}
		if rid := w.Header().Get("X-Request-ID"); rid == "" || !strings.Contains(string(body), rid) {
			t.Errorf("%s: body does not carry the request id", path)
		}
	}
	if !strings.Contains(logs.String(), "exploded") {
		t.Error("the cause of a 500 did not reach the log")
	}
}

func TestSecurityHeaders(t *testing.T) {
	w := do(newRouter(&bytes.Buffer{}), "POST", "/api/echo", "application/json", `{}`)
	for k, want := range map[string]string{
		"Content-Security-Policy":   "frame-ancestors 'none'",
		"Strict-Transport-Security": "max-age=",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
	} {
		if got := w.Header().Get(k); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", k, got, want)
		}
	}
	if strings.Contains(CSP, "unsafe-inline") || strings.Contains(CSP, "unsafe-eval") {
		t.Error("CSP allows inline or eval script")
	}
}
