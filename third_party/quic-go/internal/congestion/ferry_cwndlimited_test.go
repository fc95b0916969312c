// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package congestion

import (
	"testing"
	"time"

	"github.com/quic-go/quic-go/internal/monotime"
	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/utils"
)

// A paced sender keeps a little under its window in flight: CUBIC must
// still regrow the window after a loss. Upstream took every such
// ACK for an application-limited one and reset CUBIC's epoch, freezing the
// window. A sender with half its window in flight stays limited by the
// application (ferry patch).
func TestFerryCwndLimitedWhilePaced(t *testing.T) {
	const pkt = protocol.ByteCount(1400)
	for _, tc := range []struct {
		name     string
		inFlight float64 // share of the window in flight when an ACK arrives
		grow     bool
	}{
		{"paced, 85 % in flight", 0.85, true},
		{"application-limited, 50 % in flight", 0.5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock mockClock
			rttStats := utils.NewRTTStats()
			rttStats.UpdateRTT(30*time.Millisecond, 0)
			c := newCubicSender(&clock, rttStats, &utils.ConnectionStats{}, false, pkt, 1000*pkt, 10000*pkt, nil)
			// A loss at 1000 packets: CUBIC cuts to 700 and regrows
			// towards 1000, fast at first.
			var pn protocol.PacketNumber
			c.OnPacketSent(monotime.Time(clock), 0, pn, pkt, true)
			c.OnCongestionEvent(pn, pkt, c.GetCongestionWindow())
			pn++
			before := c.GetCongestionWindow()
			// Two seconds of ACKs, one per millisecond, each for 10 packets.
			for range 2000 {
				clock.Advance(time.Millisecond)
				inFlight := protocol.ByteCount(tc.inFlight * float64(c.GetCongestionWindow()))
				for range 10 {
					c.OnPacketSent(monotime.Time(clock), inFlight, pn, pkt, true)
					c.OnPacketAcked(pn, pkt, inFlight, monotime.Time(clock))
					pn++
				}
			}
			after := c.GetCongestionWindow()
			if grew := after > before+before/10; grew != tc.grow {
				t.Fatalf("window %d → %d packets, grew %v, want %v", before/pkt, after/pkt, grew, tc.grow)
			}
		})
	}
}
