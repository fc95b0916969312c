// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ackhandler

import (
	"slices"
	"testing"

	"github.com/quic-go/quic-go/internal/monotime"
	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/utils"
)

// The first 100 ack-eliciting packets are acknowledged every 2nd, later
// ones every 10th, and a gap at once (ferry patch: ACK decimation).
func TestFerryAckDecimation(t *testing.T) {
	h := newAppDataReceivedPacketTracker(utils.DefaultLogger)
	now := monotime.Now()
	var acks []protocol.PacketNumber
	receive := func(pn protocol.PacketNumber) {
		if err := h.ReceivedPacket(pn, protocol.ECNNon, now, true); err != nil {
			t.Fatal(err)
		}
		if h.GetAckFrame(now, true) != nil {
			acks = append(acks, pn)
		}
	}
	for pn := range protocol.PacketNumber(140) {
		receive(pn)
	}
	var want []protocol.PacketNumber
	for pn := protocol.PacketNumber(1); pn < 100; pn += 2 {
		want = append(want, pn)
	}
	for pn := protocol.PacketNumber(109); pn < 140; pn += 10 {
		want = append(want, pn)
	}
	if !slices.Equal(acks, want) {
		t.Fatalf("ACKs after packets %v, want %v", acks, want)
	}
	// 140 is lost: 141 and later reveal the gap, past the reordering
	// threshold an ACK goes out at once.
	acks = nil
	for pn := protocol.PacketNumber(141); pn < 145; pn++ {
		receive(pn)
	}
	if len(acks) == 0 || acks[0] > 141+reorderingThreshold {
		t.Fatalf("a gap at 140 was acknowledged after %v, want at once", acks)
	}
}
