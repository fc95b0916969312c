// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package sctp

import "time"

// WithLossTolerance lets the association treat losses that look random as
// no sign of congestion: when the smoothed RTT has not grown above the
// minimum RTT (no queue is building) and at most maxShare of the bytes
// sent in the last two rounds (at least 1 MiB) were retransmitted, a
// loss is repaired
// without halving cwnd. Otherwise, and after every T3-rtx timeout, the
// congestion response is RFC 9260's. 0 (the default) turns it off.
//
// This is not RFC 9260 congestion control. Under independent random loss
// (a radio link, a lossy tunnel), RFC 9260's response holds a sender to
// about 1.22/sqrt(p) packets per RTT: 1.1 MB/s at 30 ms RTT, 0.2 % loss
// and 1191-byte packets, whatever the path's capacity. The RTT and loss
// share guards keep the ordinary response where losses come from a full
// queue; like BBR's 2 % loss threshold, they let a sender keep up to
// maxShare loss on a shallow-buffered bottleneck.
func WithLossTolerance(maxShare float64) AssociationOption {
	return sharedOption(func(c *Config) error {
		c.lossTolerance = maxShare

		return nil
	})
}

// lossToleranceMinSample is the fewest bytes a loss share is measured
// over: one loss in a small window is a large share, and reading it as
// congestion left the window small for good (it then grows by one packet
// per RTT, and the next samples are small too). Below it only the RTT
// guard applies. 128 KiB (110 packets) was too few: at 1 % random loss
// each way, three or more losses in a sample (a "share" of 2.7 %) come
// about one sample in ten, and the lab's 30 ms, 1 % path moved 2.1 MB/s
// in two runs of three (23 in the third). 1 MiB, as our quic-go's.
const lossToleranceMinSample = 1 << 20

// lossTolerance counts, per round trip (at least lossToleranceMinSample),
// bytes delivered and retransmitted.
// The association's lock guards it.
type lossTolerance struct {
	maxShare float64
	roundEnd uint32 // the round ends when the cumulative ack passes it
	started  bool

	delivered, retransmitted         int // this round
	prevDelivered, prevRetransmitted int // the round before
}

func (l *lossTolerance) onAck(bytesAcked int, cumTSN, nextTSN uint32) {
	if l.maxShare <= 0 {
		return
	}
	l.delivered += bytesAcked
	if !l.started || sna32GTE(cumTSN, l.roundEnd) {
		l.started = true
		l.roundEnd = nextTSN - 1
		// A round too short to measure a share goes on into the next.
		if l.delivered+l.retransmitted >= lossToleranceMinSample {
			l.prevDelivered, l.prevRetransmitted = l.delivered, l.retransmitted
			l.delivered, l.retransmitted = 0, 0
		}
	}
}

func (l *lossTolerance) onRetransmit(n int) {
	if l.maxShare > 0 {
		l.retransmitted += n
	}
}

// queueSlack is how far the smoothed RTT may rise above the minimum RTT
// before losses count as congestion: half the minimum, at least
// lossToleranceMinSlack (timer and scheduling noise).
const lossToleranceMinSlack = 10 * time.Millisecond

// lossLooksRandom reports whether a newly detected loss should be repaired
// without a congestion response (WithLossTolerance). The caller holds the
// lock.
func (a *Association) lossLooksRandom() bool {
	l := &a.lossTolerance
	if l.maxShare <= 0 || a.rackMinRTT <= 0 {
		return false
	}
	srtt := time.Duration(a.SRTT() * float64(time.Millisecond))
	if srtt <= 0 || srtt > a.rackMinRTT+max(a.rackMinRTT/2, lossToleranceMinSlack) {
		return false
	}
	delivered := l.delivered + l.prevDelivered
	retransmitted := l.retransmitted + l.prevRetransmitted

	if delivered+retransmitted < lossToleranceMinSample {
		return true
	}

	return float64(retransmitted) <= l.maxShare*float64(delivered+retransmitted)
}
