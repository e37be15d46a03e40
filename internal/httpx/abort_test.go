package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// A handler that aborts with http.ErrAbortHandler after sending its status
// and part of its body must leave the client with a failed transfer (reset
// HTTP/2 stream, closed HTTP/1.1 connection), never a body that ends as if
// complete; any other panic is still a 500.
func TestRecoverLetsAbortThrough(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(RequestIDs(), Recover(slog.New(slog.DiscardHandler)))
	r.GET("/abort", func(c *gin.Context) {
		c.Header("Content-Length", "1000")
		c.Status(http.StatusOK)
		_, _ = c.Writer.Write([]byte(strings.Repeat("x", 100)))
		c.Writer.Flush()
		panic(http.ErrAbortHandler)
	})
	r.GET("/chunked", func(c *gin.Context) {
		c.Status(http.StatusPartialContent)
		_, _ = c.Writer.Write([]byte("partial"))
		c.Writer.Flush()
		panic(http.ErrAbortHandler)
	})
	r.GET("/bug", func(*gin.Context) { panic("bug") })

	for _, h2 := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(r)
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		client := srv.Client()
		for _, path := range []string{"/abort", "/chunked"} {
			resp, err := client.Get(srv.URL + path)
			if err != nil {
				t.Fatalf("h2=%v %s: %v", h2, path, err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("h2=%v %s: body read to a clean end (proto %s); want a failed transfer", h2, path, resp.Proto)
			}
		}
		resp, err := client.Get(srv.URL + "/bug")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("h2=%v: a panic answered %d, want 500", h2, resp.StatusCode)
		}
		srv.Close()
	}
}
