// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package client

import (
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
)

func ferryConn() *UDPConn {
	return &UDPConn{
		readCh:     make(chan *inboundData, maxReadQueueSize),
		closeCh:    make(chan struct{}),
		allocation: allocation{log: logging.NewDefaultLoggerFactory().NewLogger("test")},
	}
}

var ferryPeer = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}

// HandleInbound waits for the reader when its queue is full, instead of
// dropping the packet (ferry patch); it keeps its own copy of the data.
func TestFerryHandleInboundWaits(t *testing.T) {
	c := ferryConn()
	for i := range maxReadQueueSize {
		c.HandleInbound([]byte{byte(i)}, ferryPeer)
	}
	buf := []byte{42}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.HandleInbound(buf, ferryPeer)
	}()
	<-c.readCh // room for one
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("HandleInbound still waiting after the reader made room")
	}
	buf[0] = 0 // the caller's buffer is its own again
	var last *inboundData
	for len(c.readCh) > 0 {
		last = <-c.readCh
	}
	if last == nil || len(last.data) != 1 || last.data[0] != 42 {
		t.Fatalf("last queued packet %v, want the waiting one [42]", last)
	}
}

// HandleInbound gives up after maxInboundWait, and at once when the
// connection closes.
func TestFerryHandleInboundGivesUp(t *testing.T) {
	c := ferryConn()
	for i := range maxReadQueueSize {
		c.HandleInbound([]byte{byte(i)}, ferryPeer)
	}
	start := time.Now()
	c.HandleInbound([]byte{1}, ferryPeer)
	if d := time.Since(start); d < maxInboundWait {
		t.Fatalf("returned after %v, before maxInboundWait", d)
	}
	if len(c.readCh) != maxReadQueueSize {
		t.Fatalf("queue holds %d packets", len(c.readCh))
	}
	close(c.closeCh)
	start = time.Now()
	c.HandleInbound([]byte{1}, ferryPeer)
	if d := time.Since(start); d >= maxInboundWait {
		t.Fatalf("a closed connection held HandleInbound for %v", d)
	}
}

// A relayed packet costs no allocation on its way to the reader: its
// copy goes into a buffer an earlier ReadFrom gave back (ferry patch),
// and the data read is the data handed in.
func TestFerryHandleInboundReusesBuffers(t *testing.T) {
	c := ferryConn()
	c.readTimer = time.NewTimer(time.Hour)
	defer c.readTimer.Stop()
	pkt := make([]byte, 1200)
	buf := make([]byte, 1500)
	var seq byte
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		pkt[0], pkt[len(pkt)-1] = seq, ^seq
		c.HandleInbound(pkt, ferryPeer)
		n, from, err := c.ReadFrom(buf)
		if err != nil || n != len(pkt) || from != ferryPeer || buf[0] != seq || buf[n-1] != ^seq {
			t.Fatalf("read %d bytes from %v (%v), first %d last %d, want %d bytes, %d and %d", n, from, err, buf[0], buf[n-1], len(pkt), seq, ^seq)
		}
	})
	if allocs > 0.01 {
		t.Errorf("%.2f allocations per relayed packet, want 0", allocs)
	}
	// A short buffer still fails, and the packet's buffer goes back.
	c.HandleInbound(pkt, ferryPeer)
	if _, _, err := c.ReadFrom(buf[:10]); err == nil {
		t.Fatal("a 10-byte buffer read a 1200-byte packet")
	}
}
