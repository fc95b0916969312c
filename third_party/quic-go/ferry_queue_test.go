// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import (
	"testing"
	"time"
)

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

// PushWait waits for room in a full queue: a Pop lets the waiting packet
// in (ferry patch, for Transport.Deliver).
func TestFerryPushWaitForRoom(t *testing.T) {
	var q receivedPacketQueue
	active := &pathReceiver{}
	q.Init(active)
	for i := range 1024 {
		q.Push(receivedPacket{data: []byte{byte(i)}}, active)
	}
	pushed := make(chan bool, 1)
	go func() { pushed <- q.PushWait(receivedPacket{data: []byte{42}}, active, nil, time.Minute) }()
	// The waiter is parked only once it has made the room channel; Pop
	// before that would leave it nothing to wait for, which is fine too.
	if _, _, ok := q.Pop(); !ok {
		t.Fatal("nothing to pop")
	}
	select {
	case ok := <-pushed:
		if !ok {
			t.Fatal("PushWait dropped the packet although a Pop made room")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PushWait still waiting after a Pop made room")
	}
	var last receivedPacket
	for {
		p, _, ok := q.Pop()
		if !ok {
			break
		}
		last = p
	}
	if last.data[0] != 42 {
		t.Fatalf("last packet %d, want the waiting one (42)", last.data[0])
	}
}

// PushWait gives up after its bound, or when its connection closes.
func TestFerryPushWaitGivesUp(t *testing.T) {
	var q receivedPacketQueue
	active := &pathReceiver{}
	q.Init(active)
	for i := range 1024 {
		q.Push(receivedPacket{data: []byte{byte(i)}}, active)
	}
	start := time.Now()
	if q.PushWait(receivedPacket{data: []byte{1}}, active, nil, 20*time.Millisecond) {
		t.Fatal("queued into a full queue")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("gave up after %v, before its bound", d)
	}
	done := make(chan struct{})
	close(done)
	if q.PushWait(receivedPacket{data: []byte{1}}, active, done, time.Hour) {
		t.Fatal("queued into a full queue of a closed connection")
	}
}
