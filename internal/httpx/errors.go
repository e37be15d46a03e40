// Package httpx holds what every HTTP handler shares: the error kinds and
// their one mapping to HTTP status, security headers, request IDs, body
// limits and strict JSON decoding.
package httpx

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Kind classifies an error for the client.
type Kind int

const (
	KindInternal Kind = iota
	KindInvalid
	KindUnauthenticated
	KindForbidden
	KindNotFound
	KindConflict
	KindTooLarge
	KindRateLimited
	KindUnavailable
)

// statusOf is the one place error kinds become HTTP status codes.
var statusOf = map[Kind]int{
	KindInternal:        http.StatusInternalServerError,
	KindInvalid:         http.StatusBadRequest,
	KindUnauthenticated: http.StatusUnauthorized,
	KindForbidden:       http.StatusForbidden,
	KindNotFound:        http.StatusNotFound,
	KindConflict:        http.StatusConflict,
	KindTooLarge:        http.StatusRequestEntityTooLarge,
	KindRateLimited:     http.StatusTooManyRequests,
	KindUnavailable:     http.StatusServiceUnavailable,
}

// Status returns the HTTP status for k.
func Status(k Kind) int { return statusOf[k] }

// Error is an error with a kind, a stable code and a message safe to show a
// client (never PHI, never internals).
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Details are machine-readable facts for the page (a time, a count);
	// never PHI.
	Details map[string]any
	Err     error // the cause, for the log only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// E returns an Error.
func E(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Wrap returns an Error with a cause kept for the log.
func Wrap(kind Kind, code, message string, cause error) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: cause}
}

// Body is the JSON shape of every error response.
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inside of Body.
type BodyError struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Details   map[string]any `json:"details,omitempty"`
	RequestID string         `json:"request_id"`
}

// Abort writes err as the response and stops the handler chain. Errors that
// are not *Error are internal: the detail goes to the log, the client gets a
// generic message and the request ID to quote.
func Abort(c *gin.Context, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = Wrap(KindInternal, "internal", "internal error", err)
	}
	rid := RequestID(c)
	status := Status(e.Kind)
	if status >= 500 {
		log.ErrorContext(c.Request.Context(), "request failed", "request_id", rid, "code", e.Code, "err", err)
		if e.Kind == KindInternal {
			e = &Error{Kind: KindInternal, Code: "internal", Message: "internal error"}
		}
	}
	c.AbortWithStatusJSON(status, Body{Error: BodyError{Code: e.Code, Message: e.Message, Details: e.Details, RequestID: rid}})
}
