package proto

import (
	"strings"
	"time"
)

// FeatureStripes: the peer takes part in striped connection generations
// (PROTOCOL.md §3.4): stripe peer connections beside the main one, each
// with one data channel that carries only CHUNK frames, sender → receiver.
const FeatureStripes = "stripes"

// How many connections a striped generation uses (PROTOCOL.md §3.4). One
// browser data channel's SCTP association is slow with latency and loss;
// several peer connections add up (issue 13: at 30 ms RTT one moves
// ~4 MB/s, four 6.1 MB/s; with 0.2 % loss one 1.0 MB/s, eight 5.1 MB/s).
// On a LAN too: between two Chromiums on the lab's routed LAN one moved
// 16.9 MB/s, two 20.7 and four 20.7-21.4, at less CPU per byte.
const (
	// MaxStripes caps the connections of one generation, main included:
	// each costs a DTLS handshake and two sealed signals.
	MaxStripes = 8
	// StripeFullRTT: from it on the generation uses MaxStripes; below it
	// (a LAN, or an RTT not known yet), half as many.
	StripeFullRTT = 15 * time.Millisecond
	// StripeMinBytes: a generation with less left to send than this does
	// not stripe (it would be over before the stripes are up).
	StripeMinBytes = 8 << 20
	// MaxRelayStripes caps the connections of a relayed generation: each
	// stripe costs each peer one more relay allocation (UDP only), which
	// counts against the relay's allocations per link (--turn-quota 32:
	// two generations of 14). Three moved 62 % of a direct generation's
	// bytes at 30 ms and 46 % with 0.2 % loss between two Chromiums, six
	// 74 % on both (issue 13: at least 70 %).
	MaxRelayStripes = 6
	// RelayAllocationsPerGeneration is how many relay allocations a
	// relayed generation may hold: per peer, one for each of the main
	// connection's TURN URLs (UDP and TCP) and one per stripe (UDP).
	// While a generation replaces another, a link holds twice as many.
	RelayAllocationsPerGeneration = 2 * (2 + MaxRelayStripes - 1)
	// StripeDescribeWait bounds how long a stripe connection gathers
	// candidates before it sends its description (stripes do not trickle).
	StripeDescribeWait = 2 * time.Second
)

// StripeCount is how many connections (main included) a generation uses
// on a path with the selected pair's round trip time rtt (0: unknown),
// with remaining bytes still to send.
func StripeCount(rtt time.Duration, remaining int64) int {
	switch {
	case remaining < StripeMinBytes:
		return 1
	case rtt < StripeFullRTT:
		return MaxStripes / 2
	default:
		return MaxStripes
	}
}

// StripeKeepsICEURL reports whether a stripe connection keeps the main
// connection's ICE server URL u (PROTOCOL.md §3.4): STUN always, TURN
// over UDP (no transport parameter means UDP) only when the generation is
// relayed. The web client applies the same rule (vectors
// stripe_config.json).
func StripeKeepsICEURL(u string, relayed bool) bool {
	if strings.HasPrefix(u, "stun:") || strings.HasPrefix(u, "stuns:") {
		return true
	}
	rest, ok := strings.CutPrefix(u, "turn:")
	if !relayed || !ok {
		return false
	}
	_, params, _ := strings.Cut(rest, "?")
	return params == "" || params == "transport=udp"
}

// RelayedStripeOffer reports whether a stripe offer stripes a relayed
// generation: it carries relay candidates (PROTOCOL.md §3.4).
func RelayedStripeOffer(sdp string) bool { return strings.Contains(sdp, " typ relay") }
