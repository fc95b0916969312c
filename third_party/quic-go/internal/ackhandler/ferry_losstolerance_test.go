// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ackhandler

import (
	"testing"
	"time"

	"github.com/quic-go/quic-go/internal/monotime"
	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/utils"
	"github.com/quic-go/quic-go/internal/wire"
)

// The loss tolerance given to NewSentPacketHandler (Config.LossTolerance)
// reaches its congestion controller, and the one it builds after a path
// migration: with 0 a loss at a steady RTT cuts the window, with 0.02 it
// does not (ferry patch).
func TestFerrySentPacketHandlerLossTolerance(t *testing.T) {
	for _, tc := range []struct {
		share float64
		cut   bool
	}{
		{0, true},
		{0.02, false},
	} {
		var stats utils.ConnectionStats
		sph := NewSentPacketHandler(
			0, 1200, utils.NewRTTStats(), &stats, true, false,
			nil, protocol.PerspectiveServer, nil, utils.DefaultLogger, tc.share,
		).(*sentPacketHandler)
		now := monotime.Now()
		// Ten packets; the ACK of the last, 1 ms later, declares the
		// first seven lost (packet threshold 3).
		lose := func() (before, after protocol.ByteCount) {
			t.Helper()
			var last protocol.PacketNumber
			for range 10 {
				last = sph.PopPacketNumber(protocol.PacketNumberSpaceAppData)
				sph.SentPacket(now, last, protocol.InvalidPacketNumber, nil, []Frame{{Frame: &wire.PingFrame{}}}, protocol.Encryption1RTT, protocol.ECNNon, 1200, false, false)
			}
			before = sph.congestion.GetCongestionWindow()
			lost := stats.PacketsLost.Load()
			now = now.Add(time.Millisecond)
			ack := &wire.AckFrame{AckRanges: []wire.AckRange{{Smallest: last, Largest: last}}}
			if _, err := sph.ReceivedAck(ack, protocol.Encryption1RTT, now); err != nil {
				t.Fatal(err)
			}
			if n := stats.PacketsLost.Load() - lost; n != 7 {
				t.Fatalf("%d packets lost, want 7", n)
			}
			return before, sph.congestion.GetCongestionWindow()
		}
		if before, after := lose(); (after < before) != tc.cut {
			t.Errorf("tolerance %v: window %d → %d, want cut %v", tc.share, before, after, tc.cut)
		}
		sph.MigratedPath(now, 1200)
		if before, after := lose(); (after < before) != tc.cut {
			t.Errorf("tolerance %v after a path migration: window %d → %d, want cut %v", tc.share, before, after, tc.cut)
		}
	}
}
