package proto_test

import (
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/vectors"
)

type stripeVector struct {
	RTTMs     float64 `json:"rttMs"`
	Remaining int64   `json:"remaining"`
	Want      int     `json:"want"`
}

// TestStripeCount writes stripes.json, which the web client checks too.
func TestStripeCount(t *testing.T) {
	var vs []stripeVector
	for _, c := range []struct {
		rtt       time.Duration
		remaining int64
		want      int
	}{
		{0, 1 << 30, 1},
		{time.Millisecond, 1 << 30, 1},
		{4900 * time.Microsecond, 1 << 30, 1},
		{5 * time.Millisecond, 1 << 30, 4},
		{14 * time.Millisecond, 1 << 30, 4},
		{15 * time.Millisecond, 1 << 30, 8},
		{30 * time.Millisecond, 1 << 30, 8},
		{300 * time.Millisecond, 1 << 30, 8},
		{30 * time.Millisecond, proto.StripeMinBytes - 1, 1},
		{30 * time.Millisecond, proto.StripeMinBytes, 8},
	} {
		if got := proto.StripeCount(c.rtt, c.remaining); got != c.want {
			t.Errorf("StripeCount(%v, %d) = %d, want %d", c.rtt, c.remaining, got, c.want)
		}
		vs = append(vs, stripeVector{RTTMs: float64(c.rtt) / float64(time.Millisecond), Remaining: c.remaining, Want: c.want})
	}
	vectors.Check(t, "stripes.json", vs, *update)
}
