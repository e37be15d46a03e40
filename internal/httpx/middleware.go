package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// CSP is the Content-Security-Policy of every response: scripts, styles and
// connections from our own origin only; no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

const requestIDKey = "openvisit.request_id"

// SecurityHeaders sets the headers every response carries. connectSrc adds
// sources to the CSP's connect-src: the media nodes' wss:// origins when
// they are not this origin (cluster.media_connect_src).
func SecurityHeaders(connectSrc ...string) gin.HandlerFunc {
	csp := CSP
	if len(connectSrc) > 0 {
		csp = strings.Replace(CSP, "connect-src 'self'", "connect-src 'self' "+strings.Join(connectSrc, " "), 1)
	}
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()")
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		c.Next()
	}
}

// RequestID gives every request an opaque ID, echoed in X-Request-ID and in
// error bodies, so a user can quote it and an operator find the log line.
func RequestIDs() gin.HandlerFunc {
	return func(c *gin.Context) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		c.Set(requestIDKey, id)
		c.Writer.Header().Set("X-Request-ID", id)
		c.Next()
	}
}

// RequestID returns the request's ID.
func RequestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// AccessLog logs one line per request with the route pattern (never the raw
// path or query, which could carry identifiers or secrets).
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			// Pages are served by the NoRoute handler; name them by kind
			// rather than by path, which could carry identifiers.
			route = "static"
			if strings.HasPrefix(c.Request.URL.Path, "/api/") {
				route = "unmatched"
			}
		}
		status := c.Writer.Status()
		if c.IsWebsocket() && status == http.StatusOK {
			// gin cannot see a hijacked upgrade succeed; a refused one wrote its status.
			status = http.StatusSwitchingProtocols
		}
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "http",
			slog.String("request_id", RequestID(c)),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)))
	}
}

// Recover turns a handler panic into a 500 with a request ID instead of a
// dropped connection; the stack goes to the log. A handler that panics
// with http.ErrAbortHandler — the standard way to abort a response whose
// status is already sent (a recording that fails its integrity check
// mid-body) — is let through to net/http, which resets the HTTP/2 stream or
// closes the HTTP/1.1 connection, so the client sees a failed transfer
// instead of a response that ends as if complete. (gin's recovery treats
// that panic like a broken pipe and swallows it.)
func Recover(log *slog.Logger) gin.HandlerFunc {
	recovery := gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, rec any) {
		log.Error("handler panic", "request_id", RequestID(c), "panic", rec)
		Abort(c, log, E(KindInternal, "internal", "internal error"))
	})
	return func(c *gin.Context) {
		recovery(c)
		for _, e := range c.Errors {
			if errors.Is(e.Err, http.ErrAbortHandler) {
				panic(http.ErrAbortHandler)
			}
		}
	}
}

// LimitBody caps request bodies at n bytes.
func LimitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}
