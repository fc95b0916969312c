package main

import (
	"io"
	"net/url"
	"testing"

	"github.com/ferrydev/ferry/internal/config"
)

// --loss-tolerance reaches the peer's Options (and with them SCTP and
// QUIC): 0.02 unless set, 0 turns it off.
func TestLossToleranceFlag(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	for _, c := range []struct {
		args []string
		want float64
	}{
		{nil, 0.02}, // QUIC's constant before the flag reached it
		{[]string{"--loss-tolerance", "0"}, 0},
		{[]string{"--loss-tolerance", "0.05"}, 0.05},
	} {
		var pf peerFlags
		fs := newFlagSet("send", "", stdio{err: io.Discard})
		pf.register(fs, true)
		if err := config.Parse(fs, c.args, noEnv); err != nil {
			t.Fatal(err)
		}
		cfg, err := pf.config(stdio{err: io.Discard}, &url.URL{Scheme: "https", Host: "ferry.example.org"})
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Options.LossTolerance; got != c.want {
			t.Errorf("%q: LossTolerance %v, want %v", c.args, got, c.want)
		}
	}
}
