// Package delivery is the one home of how OpenVisit posts to a receiver
// it does not control (the alerts webhook, visit event webhooks, later SMS
// and email reminders through a gateway): the HMAC-SHA256 signature with
// its timestamp, the POST itself with its error classes, and the retry
// schedule (exponential backoff with jitter up to a limit).
//
// The outboxes that use it keep their rows in PostgreSQL and commit them
// with the change that causes them; this package holds no state.
package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed request.
const (
	HeaderTimestamp = "X-OpenVisit-Timestamp"
	HeaderSignature = "X-OpenVisit-Signature"
)

// Sign returns the X-OpenVisit-Signature value for body sent at ts (Unix
// seconds): "sha256=" and the hex HMAC-SHA256 under secret of
// "<ts>.<body>". The timestamp is inside the MAC so a receiver can refuse
// a replay of an old request.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature: a signature or timestamp does not verify.
var ErrBadSignature = errors.New("delivery: bad signature")

// Verify checks a request's timestamp header and signature against body,
// as a receiver should: in constant time, and refusing a timestamp more
// than skew away from now.
func Verify(secret []byte, tsHeader, sigHeader string, body []byte, now time.Time, skew time.Duration) error {
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > skew || d < -skew {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(sigHeader), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}

// Error classes: what went wrong with an attempt, for the delivery log
// (never the receiver's words, which could echo anything back).
const (
	ClassNone    = ""
	ClassTimeout = "timeout"
	ClassConnect = "connect"
	ClassTLS     = "tls"
	ClassStatus  = "status"
	ClassOther   = "other"
)

// Result is one attempt's outcome.
type Result struct {
	StatusCode int
	// Class is ClassNone when the receiver accepted (2xx).
	Class string
	Err   error
}

// OK reports whether the receiver accepted.
func (r Result) OK() bool { return r.Class == ClassNone }

// Request is one signed POST.
type Request struct {
	URL    string
	Secret []byte
	Body   []byte
	// Headers are extra headers (an event's ID and kind).
	Headers map[string]string
	// At signs the request (its timestamp).
	At time.Time
}

// Post sends r with client and classifies the outcome. The response body
// is discarded unread beyond a small limit.
func Post(ctx context.Context, client *http.Client, r Request) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Result{Class: ClassOther, Err: fmt.Errorf("delivery: request: %w", err)}
	}
	ts := r.At.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "OpenVisit-Webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(r.Secret, ts, r.Body))
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{Class: classify(err), Err: fmt.Errorf("delivery: post: %s", classify(err))}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Result{StatusCode: resp.StatusCode, Class: ClassStatus,
			Err: fmt.Errorf("delivery: receiver answered %d", resp.StatusCode)}
	}
	return Result{StatusCode: resp.StatusCode}
}

// classify names a transport error's class. The error itself may carry
// the URL, which is the receiver's and may hold a token: it is not kept.
func classify(err error) string {
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.As(err, &certErr), strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		return ClassTLS
	case errors.As(err, &opErr):
		return ClassConnect
	}
	return ClassOther
}

// Backoff is a retry schedule: the wait before attempt n+1 after n failed
// attempts is Base·2^(n-1), at most Max, less up to Jitter of it at random
// (so receivers that come back are not hit by every sender at once).
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64 // 0..1
	// Limit is how many attempts are made before a delivery is failed.
	Limit int
}

// DefaultBackoff: 30 s, 1 min, 2 min, … up to an hour, 12 attempts
// (about seven hours in all).
var DefaultBackoff = Backoff{Base: 30 * time.Second, Max: time.Hour, Jitter: 0.2, Limit: 12}

// Wait returns the wait after attempts failed attempts; r draws the jitter
// (nil: math/rand/v2).
func (b Backoff) Wait(attempts int, r func() float64) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	d := b.Base
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		if r == nil {
			r = rand.Float64
		}
		d -= time.Duration(float64(d) * b.Jitter * r())
	}
	return d
}

// Exhausted reports whether attempts reached the limit.
func (b Backoff) Exhausted(attempts int) bool { return b.Limit > 0 && attempts >= b.Limit }
