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
		{0, 1 << 30, 4},
		{100 * time.Microsecond, 1 << 30, 4},
		{time.Millisecond, 1 << 30, 4},
		{5 * time.Millisecond, 1 << 30, 4},
		{time.Millisecond, proto.StripeMinBytes - 1, 1},
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

type stripeURLVector struct {
	URL     string `json:"url"`
	Relayed bool   `json:"relayed"`
	Keep    bool   `json:"keep"`
}

type stripeOfferVector struct {
	SDP     string `json:"sdp"`
	Relayed bool   `json:"relayed"`
}

// TestStripeConfig writes stripe_config.json: which ICE server URLs a
// stripe connection keeps, and which offers stripe a relayed generation.
// The web client checks the same vectors.
func TestStripeConfig(t *testing.T) {
	var out struct {
		URLs   []stripeURLVector   `json:"urls"`
		Offers []stripeOfferVector `json:"offers"`
	}
	for _, c := range []stripeURLVector{
		{"stun:stun.example.org:3478", false, true},
		{"stun:stun.example.org:3478", true, true},
		{"stuns:stun.example.org:5349", false, true},
		{"turn:turn.example.org:3478", false, false},
		{"turn:turn.example.org:3478", true, true},
		{"turn:turn.example.org:3478?transport=udp", true, true},
		{"turn:turn.example.org:3478?transport=tcp", true, false},
		{"turns:turn.example.org:5349", true, false},
		{"turns:turn.example.org:5349?transport=tcp", true, false},
		{"turn:[2001:db8::1]:3478", true, true},
		{"turn:turn.example.org:3478?transport=udp&x=1", true, false},
		{"stunx:stun.example.org", true, false},
		{"", true, false},
	} {
		if got := proto.StripeKeepsICEURL(c.URL, c.Relayed); got != c.Keep {
			t.Errorf("StripeKeepsICEURL(%q, %v) = %v, want %v", c.URL, c.Relayed, got, c.Keep)
		}
		out.URLs = append(out.URLs, c)
	}
	host := "a=candidate:1 1 udp 2130706431 10.0.0.2 50000 typ host\r\n"
	relay := "a=candidate:2 1 udp 16777215 203.0.113.9 61000 typ relay raddr 0.0.0.0 rport 0\r\n"
	srflx := "a=candidate:3 1 udp 1694498815 198.51.100.4 40000 typ srflx raddr 10.0.0.2 rport 50000\r\n"
	for _, c := range []stripeOfferVector{
		{"v=0\r\n" + host + srflx, false},
		{"v=0\r\n" + host + relay, true},
		{"v=0\r\n" + relay, true},
		{"v=0\r\n", false},
	} {
		if got := proto.RelayedStripeOffer(c.SDP); got != c.Relayed {
			t.Errorf("RelayedStripeOffer(%q) = %v, want %v", c.SDP, got, c.Relayed)
		}
		out.Offers = append(out.Offers, c)
	}
	vectors.Check(t, "stripe_config.json", out, *update)
}
