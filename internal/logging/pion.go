package logging

import (
	"context"
	"fmt"
	"log/slog"

	pionlogging "github.com/pion/logging"
)

// PionLoggerFactory routes Pion's logs into l, with Pion's scope (ice, dtls,
// pc, …) as the "scope" attribute.
//
// Pion's trace, debug and info lines all go to slog Debug: its info lines are
// connection-state chatter, and some of them carry candidate addresses, which
// must not reach an info-level log in a system that handles PHI. Warnings and
// errors keep their level.
func PionLoggerFactory(l *slog.Logger) pionlogging.LoggerFactory {
	return factory{l: l}
}

type factory struct{ l *slog.Logger }

func (f factory) NewLogger(scope string) pionlogging.LeveledLogger {
	return pionLogger{l: f.l.With("scope", scope)}
}

type pionLogger struct{ l *slog.Logger }

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

func (p pionLogger) Trace(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Debug(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Info(msg string)                   { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.log(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(slog.LevelWarn, format, args...) }
func (p pionLogger) Error(msg string)                  { p.log(slog.LevelError, msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(slog.LevelError, format, args...) }
