// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package congestion

import (
	"time"

	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/utils"
)

// lossToleranceMinSample is the fewest bytes a loss share is measured
// over; below it only the RTT guard applies. Large enough that the count
// of random losses in it is steady: over 128 KiB (90 packets) 1 % loss
// showed 2 % in one sample of four, and each such cut kept the window
// small, so the next samples were small too (1.1 MB/s in the lab at
// 30 ms RTT and 1 % loss). Over 1 MiB (~730 packets, a standard
// deviation of 0.37 points at 1 %) a sample still showed 2.03 % about once
// in ten transfers, at their start or after a cut, and the transfer kept
// a ~1 MB window throughout (relayed, 30 ms, 1 % loss: 26 MB/s against
// 70); over 4 MiB 2 % is five standard deviations above 1 %.
const lossToleranceMinSample = 4 << 20

// lossToleranceMinSlack: the smoothed RTT may rise above the minimum by
// half the minimum, at least this much (timer and scheduling noise),
// before losses count as congestion.
const lossToleranceMinSlack = 10 * time.Millisecond

// lossTolerance lets the sender lose up to a share of the bytes of the
// last two rounds without a congestion response, while the RTT shows no
// queue building (Config.LossTolerance; ferry's --loss-tolerance, as for
// SCTP). It counts, per round trip (at least lossToleranceMinSample),
// bytes acknowledged and lost.
//
// This is not RFC 9002 congestion control. Under independent random loss
// (a radio link, a lossy tunnel) its response holds a sender to about
// 1.22/sqrt(p) packets per round trip: 1.6 MB/s at 30 ms RTT and 0.2 %
// loss in ferry's lab, whatever the path's capacity. The RTT and share
// guards keep the ordinary response where losses come from a full queue;
// like BBR's 2 % loss threshold, they let a sender keep up to this share
// of loss on a shallow-buffered bottleneck.
type lossTolerance struct {
	share float64 // SetLossTolerance; 0: off

	roundEnd protocol.PacketNumber // the round ends when an ack passes it
	started  bool

	acked, lost         protocol.ByteCount // this round
	prevAcked, prevLost protocol.ByteCount // the round before
}

// SetLossTolerance makes the sender repair losses that look random, up to
// share of the bytes, without a congestion response (0, the default:
// off, as upstream).
func (c *cubicSender) SetLossTolerance(share float64) { c.lossTolerance.share = share }

func (l *lossTolerance) onAck(pn protocol.PacketNumber, bytes protocol.ByteCount, largestSent protocol.PacketNumber) {
	if l.share <= 0 {
		return
	}
	l.acked += bytes
	if !l.started || pn > l.roundEnd {
		l.started = true
		l.roundEnd = largestSent
		// A round too short to measure a share goes on into the next.
		if l.acked+l.lost >= lossToleranceMinSample {
			l.prevAcked, l.prevLost = l.acked, l.lost
			l.acked, l.lost = 0, 0
		}
	}
}

func (l *lossTolerance) onLoss(bytes protocol.ByteCount) { l.lost += bytes }

// looksRandom reports whether a loss just detected should be repaired
// without a congestion response.
func (l *lossTolerance) looksRandom(rtt *utils.RTTStats) bool {
	if l.share <= 0 {
		return false
	}
	// The queue signal is the lower of the smoothed and the latest RTT: a
	// queue raises both, while one late sample (the peer's or our process
	// held off the CPU for a moment) raises only the smoothed RTT for a
	// while; under load, such moments cut the window again and again.
	minRTT, srtt := rtt.MinRTT(), min(rtt.SmoothedRTT(), rtt.LatestRTT())
	if minRTT <= 0 || srtt <= 0 || srtt > minRTT+max(minRTT/2, lossToleranceMinSlack) {
		return false
	}
	acked, lost := l.acked+l.prevAcked, l.lost+l.prevLost
	if acked+lost < lossToleranceMinSample {
		return true
	}
	return float64(lost) <= l.share*float64(acked+lost)
}
