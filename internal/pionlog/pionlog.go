// Package pionlog routes pion's logs through log/slog, so that
// --log-level and --log-format cover them like every other line.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Levels pion's debug and trace lines go to: below slog's Debug, since pion
// is far chattier than ferry at the same level.
const (
	LevelDebug = slog.LevelDebug - 4
	LevelTrace = slog.LevelDebug - 8
)

// Factory makes pion loggers that write to one slog.Logger, each line with
// a "pion" attribute naming pion's scope (ice, sctp, turn…).
type Factory struct {
	log  *slog.Logger
	warn slog.Level
}

// New returns a factory writing to log. Warn is the slog level of pion's
// warnings: slog.LevelWarn where they matter to an operator (the relay),
// lower where pion warns about routine events (a peer connection).
func New(log *slog.Logger, warn slog.Level) *Factory {
	return &Factory{log: log, warn: warn}
}

// NewLogger implements logging.LoggerFactory.
func (f *Factory) NewLogger(scope string) logging.LeveledLogger {
	return &logger{log: f.log.With("pion", scope), warn: f.warn}
}

type logger struct {
	log  *slog.Logger
	warn slog.Level
}

func (l *logger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l *logger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) { // format only what is written
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l *logger) Trace(msg string)                  { l.emit(LevelTrace, msg) }
func (l *logger) Tracef(format string, args ...any) { l.emitf(LevelTrace, format, args...) }
func (l *logger) Debug(msg string)                  { l.emit(LevelDebug, msg) }
func (l *logger) Debugf(format string, args ...any) { l.emitf(LevelDebug, format, args...) }
func (l *logger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l *logger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l *logger) Warn(msg string)                   { l.emit(l.warn, msg) }
func (l *logger) Warnf(format string, args ...any)  { l.emitf(l.warn, format, args...) }
func (l *logger) Error(msg string)                  { l.emit(slog.LevelError, msg) }
func (l *logger) Errorf(format string, args ...any) { l.emitf(slog.LevelError, format, args...) }
