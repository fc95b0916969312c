package server_test

import (
	"net/http"
	"testing"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/server"
)

// TestMetricsBehindProxy: behind a trusted proxy (the test client on
// loopback plays it), a garbled last X-Forwarded-For hop must not make the
// client the proxy, whose address may read /metrics.
func TestMetricsBehindProxy(t *testing.T) {
	cfg := testConfig()
	cfg.TrustedProxies = config.List{"127.0.0.1"}
	cfg.MetricsFrom = config.List{"127.0.0.0/8"}
	srv := start(t, cfg, server.Options{})
	u := srv.URL().String() + "/metrics"
	for _, tc := range []struct {
		xff  string
		want int
	}{
		{"", http.StatusOK}, // the proxy host itself
		{"127.0.0.5", http.StatusOK},
		{"198.51.100.7", http.StatusForbidden},
		{"198.51.100.7:4711", http.StatusForbidden},
		{"unknown", http.StatusForbidden},
		{"127.0.0.1:8080", http.StatusOK},
		{"198.51.100.7, garbage", http.StatusForbidden},
		{"[2001:db8::7]:443", http.StatusForbidden},
	} {
		h := http.Header{}
		if tc.xff != "" {
			h.Set("X-Forwarded-For", tc.xff)
		}
		if code, _ := get(t, nil, u, h); code != tc.want {
			t.Errorf("/metrics with X-Forwarded-For %q: %d, want %d", tc.xff, code, tc.want)
		}
	}
}
