package e2e_test

import (
	"slices"
	"testing"
)

// BenchmarkBrowserTransfer moves a 200 MiB file from one headless Chromium
// to another, directly and through the bundled TURN relay, and reports the
// median throughput (from Accept to verified) over the iterations. Not part
// of the normal test run:
//
//	go test -run '^$' -bench BrowserTransfer -benchtime 3x ./internal/e2e
func BenchmarkBrowserTransfer(b *testing.B) {
	for _, c := range []struct {
		name  string
		relay bool
	}{{"direct", false}, {"relay", true}} {
		b.Run(c.name, func(b *testing.B) {
			want := "direct"
			if c.relay {
				want = "relay"
			}
			var rates []float64
			for range b.N {
				rates = append(rates, runTransfer(b, transferCase{size: 200 << 20, relay: c.relay, sink: "opfs", wantPath: want}))
			}
			slices.Sort(rates)
			b.ReportMetric(rates[len(rates)/2], "MB/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
