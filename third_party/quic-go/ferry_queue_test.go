// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import "testing"

// A connection holds 1024 received packets it has not processed yet
// before it drops any (ferry patch: upstream held 256).
func TestFerryReceivedPacketQueueDepth(t *testing.T) {
	var q receivedPacketQueue
	active := &pathReceiver{}
	q.Init(active)
	for i := range 1024 {
		if !q.Push(receivedPacket{data: []byte{byte(i)}}, active) {
			t.Fatalf("packet %d dropped", i+1)
		}
	}
	if q.Push(receivedPacket{data: []byte{0}}, active) {
		t.Fatal("packet 1025 queued")
	}
}
