package congestion

import (
	"time"

	"github.com/quic-go/quic-go/internal/protocol"
)

// Note(pwestin): the magic clamping numbers come from the original code in
// tcp_cubic.c.
const hybridStartLowWindow = protocol.ByteCount(16)

// Number of delay samples for detecting the increase of delay.
const hybridStartMinSamples = uint32(8)

// Exit slow start if the min rtt has increased by more than 1/8th.
const hybridStartDelayFactorExp = 3 // 2^3 = 8

// The original paper specifies 2 and 8ms, but those have changed over time.
const (
	hybridStartDelayMinThresholdUs = int64(4000)
	hybridStartDelayMaxThresholdUs = int64(16000)
)

// HybridSlowStart implements the TCP hybrid slow start algorithm
//
// ferry patch: HyStart++ (RFC 9406). A round whose lowest RTT exceeds the
// previous round's (not the connection's minimum) by the threshold starts
// Conservative Slow Start: the window grows a quarter as fast for
// cssRounds rounds and only then does slow start end; a round whose
// lowest RTT falls back below the one that started CSS resumes slow start.
// Upstream ended slow start on the first such round, so one burst of RTT
// jitter (a busy host, Wi-Fi) left a 30 ms path with a small window that
// CUBIC then grows by a few packets per second.
type HybridSlowStart struct {
	endPacketNumber      protocol.PacketNumber
	lastSentPacketNumber protocol.PacketNumber
	started              bool
	currentMinRTT        time.Duration
	rttSampleCount       uint32
	hystartFound         bool

	lastRoundMinRTT time.Duration // ferry patch: HyStart++
	css             bool
	cssBaselineRTT  time.Duration
	cssRounds       int
}

// cssRounds and cssGrowthDivisor are RFC 9406's CSS_ROUNDS and
// CSS_GROWTH_DIVISOR (ferry patch).
const (
	cssRounds        = 5
	cssGrowthDivisor = 4
)

// InCSS reports whether the sender is in Conservative Slow Start (ferry
// patch): it grows the window by 1/cssGrowthDivisor of the acked bytes.
func (s *HybridSlowStart) InCSS() bool { return s.css }

func (s *HybridSlowStart) StartReceiveRound(lastSent protocol.PacketNumber) {
	// ferry patch: the round just ended is the next one's reference, and
	// counts towards CSS's rounds.
	if s.rttSampleCount >= hybridStartMinSamples {
		s.lastRoundMinRTT = s.currentMinRTT
	}
	if s.css {
		if s.cssRounds++; s.cssRounds >= cssRounds {
			s.hystartFound = true
		}
	}
	s.endPacketNumber = lastSent
	s.currentMinRTT = 0
	s.rttSampleCount = 0
	s.started = true
}

// IsEndOfRound returns true if this ack is the last packet number of our current slow start round.
func (s *HybridSlowStart) IsEndOfRound(ack protocol.PacketNumber) bool {
	return s.endPacketNumber < ack
}

// ShouldExitSlowStart should be called on every new ack frame, since a new
// RTT measurement can be made then.
// rtt: the RTT for this ack packet.
// minRTT: is the lowest delay (RTT) we have seen during the session.
// congestionWindow: the congestion window in packets.
func (s *HybridSlowStart) ShouldExitSlowStart(latestRTT time.Duration, minRTT time.Duration, congestionWindow protocol.ByteCount) bool {
	if !s.started {
		// Time to start the hybrid slow start.
		s.StartReceiveRound(s.lastSentPacketNumber)
	}
	if s.hystartFound {
		return true
	}
	// Second detection parameter - delay increase detection.
	// Compare the minimum delay (s.currentMinRTT) of the current
	// burst of packets relative to the minimum delay during the session.
	// Note: we only look at the first few(8) packets in each burst, since we
	// only want to compare the lowest RTT of the burst relative to previous
	// bursts.
	s.rttSampleCount++
	if s.rttSampleCount <= hybridStartMinSamples {
		if s.currentMinRTT == 0 || s.currentMinRTT > latestRTT {
			s.currentMinRTT = latestRTT
		}
	}
	// We only need to check this once per round.
	// ferry patch: HyStart++ (RFC 9406 §4.3): against the previous round's
	// lowest RTT, entering CSS rather than ending slow start, and leaving
	// CSS when the RTT comes back down.
	if s.rttSampleCount == hybridStartMinSamples {
		switch {
		case s.css:
			if s.currentMinRTT < s.cssBaselineRTT {
				s.css, s.cssRounds = false, 0 // spurious: back to slow start
			}
		case s.lastRoundMinRTT > 0:
			// 1/8 of the RTT, at least 4 and at most 16 ms.
			thresholdUs := int64(s.lastRoundMinRTT / time.Microsecond >> hybridStartDelayFactorExp)
			thresholdUs = max(min(thresholdUs, hybridStartDelayMaxThresholdUs), hybridStartDelayMinThresholdUs)
			if s.currentMinRTT >= s.lastRoundMinRTT+time.Duration(thresholdUs)*time.Microsecond {
				s.css, s.cssBaselineRTT, s.cssRounds = true, s.currentMinRTT, 0
			}
		}
	}
	// Exit from slow start if the cwnd is greater than 16 and
	// increasing delay is found.
	return congestionWindow >= hybridStartLowWindow && s.hystartFound
}

// OnPacketSent is called when a packet was sent
func (s *HybridSlowStart) OnPacketSent(packetNumber protocol.PacketNumber) {
	s.lastSentPacketNumber = packetNumber
}

// OnPacketAcked gets invoked after ShouldExitSlowStart, so it's best to end
// the round when the final packet of the burst is received and start it on
// the next incoming ack.
func (s *HybridSlowStart) OnPacketAcked(ackedPacketNumber protocol.PacketNumber) {
	if s.IsEndOfRound(ackedPacketNumber) {
		s.started = false
	}
}

// Started returns true if started
func (s *HybridSlowStart) Started() bool {
	return s.started
}

// Restart the slow start phase
func (s *HybridSlowStart) Restart() {
	s.started = false
	s.hystartFound = false
	s.lastRoundMinRTT, s.css, s.cssRounds = 0, false, 0 // ferry patch
}
