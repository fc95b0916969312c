package pionlog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/pionlog"
	"github.com/pion/logging"
)

func TestLevelsAndScope(t *testing.T) {
	tests := []struct {
		name  string
		min   slog.Level
		warn  slog.Level
		write func(l logging.LeveledLogger)
		want  []string // "LEVEL msg"
	}{
		{"errors only at the warn floor with routine warnings", slog.LevelWarn, slog.LevelDebug,
			func(l logging.LeveledLogger) {
				l.Errorf("e %d", 1)
				l.Warnf("w %d", 2)
				l.Infof("i %d", 3)
			}, []string{"ERROR e 1"}},
		{"relay warnings stay warnings", slog.LevelWarn, slog.LevelWarn,
			func(l logging.LeveledLogger) {
				l.Warnf("w %s", "x")
				l.Debugf("d")
			}, []string{"WARN w x"}},
		{"pion debug needs more than slog debug", slog.LevelDebug, slog.LevelWarn,
			func(l logging.LeveledLogger) {
				l.Infof("i")
				l.Debugf("d")
				l.Tracef("t")
			}, []string{"DEBUG i"}},
		{"everything at the trace level", pionlog.LevelTrace, slog.LevelWarn,
			func(l logging.LeveledLogger) {
				l.Debugf("d")
				l.Tracef("t")
			}, []string{"DEBUG-4 d", "DEBUG-8 t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.min}))
			tc.write(pionlog.New(log, tc.warn).NewLogger("sctp"))
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var rec struct{ Level, Msg, Pion string }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				if rec.Pion != "sctp" {
					t.Errorf("%q: pion scope %q, want sctp", line, rec.Pion)
				}
				got = append(got, rec.Level+" "+rec.Msg)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
