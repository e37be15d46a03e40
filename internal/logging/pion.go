package logging

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	pionlogging "github.com/pion/logging"
)

// PionLoggerFactory routes Pion's logs into l, with Pion's scope (ice, dtls,
// pc, …) as the "scope" attribute.
//
// Pion's trace, debug and info lines all go to slog Debug: its info lines are
// connection-state chatter, and some of them carry candidate addresses, which
// must not reach an info-level log in a system that handles PHI. Warnings and
// errors keep their level, with network addresses replaced by "<addr>" (a
// participant's IP address identifies them), and are throttled: Pion repeats
// some every 200 ms per connection ("Failed to ping without candidate pairs"
// while ICE has nothing to try), so each distinct message is logged at most
// once a minute per factory, with the number of repeats held back since.
func PionLoggerFactory(l *slog.Logger) pionlogging.LoggerFactory {
	return factory{l: l, th: newThrottle(time.Minute, maxThrottleKeys, time.Now)}
}

type factory struct {
	l  *slog.Logger
	th *throttle // shared by every logger of the factory: all connections of a node
}

func (f factory) NewLogger(scope string) pionlogging.LeveledLogger {
	return pionLogger{l: f.l.With("scope", scope), scope: scope, th: f.th}
}

type pionLogger struct {
	l     *slog.Logger
	scope string
	th    *throttle
}

func (p pionLogger) log(level slog.Level, msg string) {
	p.l.Log(context.Background(), level, msg)
}

// logf formats only when the level is enabled: Pion's trace calls are hot.
func (p pionLogger) logf(level slog.Level, format string, args ...any) {
	if !p.l.Enabled(context.Background(), level) {
		return
	}
	p.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

// report logs a warning or error: addresses redacted, repeats throttled.
func (p pionLogger) report(level slog.Level, msg string) {
	if !p.l.Enabled(context.Background(), level) {
		return
	}
	msg = RedactAddrs(msg)
	ok, held := p.th.allow(p.scope + "\x00" + digits.ReplaceAllString(msg, "#"))
	if !ok {
		return
	}
	if held > 0 {
		p.l.Log(context.Background(), level, msg, "repeats_held_back", held)
		return
	}
	p.l.Log(context.Background(), level, msg)
}

func (p pionLogger) Trace(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Debug(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Info(msg string)                   { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.report(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(format string, args ...any) {
	p.report(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (p pionLogger) Error(msg string) { p.report(slog.LevelError, msg) }
func (p pionLogger) Errorf(format string, args ...any) {
	p.report(slog.LevelError, fmt.Sprintf(format, args...))
}

var (
	// ipv4 and ipv6 match addresses with an optional port or zone; mdns
	// matches the .local names browsers hide their addresses behind.
	addrPattern = regexp.MustCompile(`\[?(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%[\w.]+)?\]?(?::\d{1,5})?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b|\b[0-9A-Fa-f-]{8,}\.local\b`)
	digits      = regexp.MustCompile(`[0-9A-Fa-f]*[0-9][0-9A-Fa-f]*`)
)

// RedactAddrs replaces IP addresses (with their ports) and mDNS names in s
// by "<addr>".
func RedactAddrs(s string) string {
	return addrPattern.ReplaceAllString(s, "<addr>")
}

// maxThrottleKeys bounds the throttle's memory; beyond it, messages not
// seen before share one budget.
const maxThrottleKeys = 256

// throttle lets each key through at most once per every, and counts what
// it held back meanwhile.
type throttle struct {
	mu    sync.Mutex
	every time.Duration
	max   int
	now   func() time.Time
	seen  map[string]*throttled
}

type throttled struct {
	last time.Time
	held uint64
}

func newThrottle(every time.Duration, maxKeys int, now func() time.Time) *throttle {
	return &throttle{every: every, max: maxKeys, now: now, seen: make(map[string]*throttled)}
}

// allow reports whether key may be logged now, and how many of its repeats
// were held back since it last was.
func (t *throttle) allow(key string) (bool, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e := t.seen[key]
	if e == nil {
		// One slot stays free for the overflow key.
		if len(t.seen) >= t.max-1 {
			t.evict(now)
		}
		if len(t.seen) >= t.max-1 {
			key = "\x00overflow"
			e = t.seen[key]
		}
		if e == nil {
			t.seen[key] = &throttled{last: now}
			return true, 0
		}
	}
	if now.Sub(e.last) < t.every {
		e.held++
		return false, 0
	}
	held := e.held
	e.last, e.held = now, 0
	return true, held
}

// evict forgets keys quiet for a whole period (their held-back counts,
// if any, are lost with them).
func (t *throttle) evict(now time.Time) {
	for k, e := range t.seen {
		if now.Sub(e.last) >= t.every {
			delete(t.seen, k)
		}
	}
}
