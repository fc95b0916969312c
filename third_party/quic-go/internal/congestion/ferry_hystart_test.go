// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package congestion

import (
	"testing"
	"time"

	"github.com/quic-go/quic-go/internal/protocol"
)

// HyStart++ (ferry patch): one round of RTT jitter enters Conservative
// Slow Start and the next normal round leaves it, so slow start goes on;
// an RTT that stays up ends slow start after cssRounds rounds of CSS.
func TestFerryHyStartPlusPlus(t *testing.T) {
	const base = 30 * time.Millisecond
	// round feeds one round of 8 RTT samples, the lowest rtt, and says
	// whether slow start should end and whether CSS is on.
	var pn protocol.PacketNumber
	round := func(s *HybridSlowStart, rtt time.Duration) (exit, css bool) {
		pn += 10
		s.StartReceiveRound(pn)
		for n := range hybridStartMinSamples {
			exit = s.ShouldExitSlowStart(rtt+time.Duration(n)*time.Millisecond, base, 100)
		}
		return exit, s.InCSS()
	}
	t.Run("jitter", func(t *testing.T) {
		var s HybridSlowStart
		round(&s, base)
		if exit, css := round(&s, base+10*time.Millisecond); exit || !css {
			t.Fatalf("a round 10 ms up: exit %v, CSS %v; want CSS", exit, css)
		}
		if exit, css := round(&s, base); exit || css {
			t.Fatalf("back down: exit %v, CSS %v; want slow start", exit, css)
		}
		for range 2 * cssRounds {
			if exit, _ := round(&s, base); exit {
				t.Fatal("slow start ended without a delay increase")
			}
		}
	})
	t.Run("queue", func(t *testing.T) {
		var s HybridSlowStart
		round(&s, base)
		rounds := 0
		for exit := false; !exit; rounds++ {
			if rounds > 2*cssRounds {
				t.Fatal("slow start never ended")
			}
			exit, _ = round(&s, base+10*time.Millisecond)
		}
		if rounds != cssRounds+1 {
			t.Fatalf("slow start ended after %d rounds up, want %d (the one that started CSS and %d of CSS)", rounds, cssRounds+1, cssRounds)
		}
	})
}
