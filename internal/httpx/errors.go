// Package httpx holds what every HTTP handler shares: the error kinds and
// their one mapping to HTTP status, security headers, request IDs, body
// limits and strict JSON decoding.
package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/db"
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
	// RetryAfter, when positive, is sent as Retry-After (seconds): the
	// condition is expected to pass on its own.
	RetryAfter int
	Err        error // the cause, for the log only
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

// CodeUnavailable is the code of every answer "the service cannot reach
// its database right now; try again shortly". Pages recognise it.
const CodeUnavailable = "service_unavailable"

// RetryAfterUnavailable is the Retry-After of CodeUnavailable, in seconds.
const RetryAfterUnavailable = 5

// classify is the one place an error becomes what the client is told. An
// *Error says so itself, except that a database that cannot be reached is
// always 503 service_unavailable with Retry-After, whatever the handler
// was doing (an internal error, or an "unavailable" of its own such as an
// audit write that failed with the database); text PostgreSQL cannot store
// is the client's 400; anything else is an internal 500.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal && e.Kind != KindUnavailable {
		return e
	}
	switch {
	case db.Unreachable(err):
		return &Error{Kind: KindUnavailable, Code: CodeUnavailable, RetryAfter: RetryAfterUnavailable,
			Message: "The service is briefly unavailable; try again in a few seconds.", Err: err}
	case db.BadText(err):
		return &Error{Kind: KindInvalid, Code: "bad_text", Err: err,
			Message: "The request holds characters that cannot be stored (NUL, or text that is not UTF-8)."}
	case e != nil:
		return e
	}
	return Wrap(KindInternal, "internal", "internal error", err)
}

// Abort writes err as the response and stops the handler chain. Errors that
// are not *Error are classified (classify); 5xx details go to the log, and
// an internal error's client gets a generic message and the request ID to
// quote.
func Abort(c *gin.Context, log *slog.Logger, err error) {
	e := classify(err)
	rid := RequestID(c)
	status := Status(e.Kind)
	if status >= 500 {
		log.ErrorContext(c.Request.Context(), "request failed", "request_id", rid, "code", e.Code, "err", err)
		if e.Kind == KindInternal {
			e = &Error{Kind: KindInternal, Code: "internal", Message: "internal error"}
		}
	}
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	c.AbortWithStatusJSON(status, Body{Error: BodyError{Code: e.Code, Message: e.Message, Details: e.Details, RequestID: rid}})
}
