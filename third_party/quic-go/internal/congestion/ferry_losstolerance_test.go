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

// With a tolerance of 2 %, a loss while the RTT is at its minimum and the
// loss share is small leaves the window alone; a loss while a queue builds
// (the RTT rose), or a share above 2 %, cuts it. With a tolerance of 0
// (upstream's default) every loss cuts it (ferry patch).
func TestFerryLossTolerance(t *testing.T) {
	const pkt = protocol.ByteCount(1400)
	setup := func(share float64, rtt time.Duration, lossEvery int) (*cubicSender, protocol.PacketNumber) {
		var clock mockClock
		rttStats := utils.NewRTTStats()
		rttStats.UpdateRTT(30*time.Millisecond, 0)
		for range 20 {
			rttStats.UpdateRTT(rtt, 0)
		}
		c := newCubicSender(&clock, rttStats, &utils.ConnectionStats{}, false, pkt, 1000*pkt, 10000*pkt, nil)
		c.SetLossTolerance(share)
		c.slowStartThreshold = c.congestionWindow // congestion avoidance
		// Two rounds of 2 MiB each, with a loss every lossEvery packets.
		var pn protocol.PacketNumber
		for range 2 {
			start := pn
			for range 1500 {
				c.OnPacketSent(monotime.Time(clock), 0, pn, pkt, true)
				pn++
			}
			for p := start; p < pn; p++ {
				if lossEvery > 0 && int(p)%lossEvery == 0 {
					c.lossTolerance.onLoss(pkt) // counted, without a response
					continue
				}
				c.lossTolerance.onAck(p, pkt, pn-1)
			}
		}
		return c, pn
	}
	for _, tc := range []struct {
		name      string
		share     float64
		rtt       time.Duration
		lossEvery int
		cut       bool
	}{
		{"random 1 %", 0.02, 31 * time.Millisecond, 100, false},
		{"queue building", 0.02, 60 * time.Millisecond, 100, true},
		{"share 5 %", 0.02, 31 * time.Millisecond, 20, true},
		{"share 5 %, tolerance 10 %", 0.1, 31 * time.Millisecond, 20, false},
		{"random 1 %, tolerance 0", 0, 31 * time.Millisecond, 100, true},
		{"one loss, tolerance 0", 0, 31 * time.Millisecond, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, pn := setup(tc.share, tc.rtt, tc.lossEvery)
			before := c.GetCongestionWindow()
			c.OnCongestionEvent(pn-1, pkt, before)
			if cut := c.GetCongestionWindow() < before; cut != tc.cut {
				t.Fatalf("window %d → %d, cut %v, want %v", before, c.GetCongestionWindow(), cut, tc.cut)
			}
		})
	}
}

// A sample of about 1 MiB with 2.2 % loss, within random 1 % loss (a
// tail that over 1 MiB came once in ten transfers), is too small to call
// congestion: no cut while the RTT shows no queue.
func TestFerryLossToleranceSmallSample(t *testing.T) {
	const pkt = protocol.ByteCount(1400)
	var clock mockClock
	rttStats := utils.NewRTTStats()
	for range 20 {
		rttStats.UpdateRTT(31*time.Millisecond, 0)
	}
	c := newCubicSender(&clock, rttStats, &utils.ConnectionStats{}, false, pkt, 1000*pkt, 10000*pkt, nil)
	c.SetLossTolerance(0.02)
	c.slowStartThreshold = c.congestionWindow
	var pn protocol.PacketNumber
	for i := range 750 { // ~1 MiB, the connection's first, 2.2 % lost
		c.OnPacketSent(monotime.Time(clock), 0, pn, pkt, true)
		if i%45 == 0 {
			c.lossTolerance.onLoss(pkt)
		} else {
			c.lossTolerance.onAck(pn, pkt, pn)
		}
		pn++
	}
	before := c.GetCongestionWindow()
	c.OnCongestionEvent(pn-1, pkt, before)
	if c.GetCongestionWindow() < before {
		t.Fatalf("window %d → %d: cut on a 1 MiB sample", before, c.GetCongestionWindow())
	}
}
