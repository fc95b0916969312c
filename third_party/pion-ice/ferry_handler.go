// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ice

import "sync"

// ferry patch: received application packets can go straight to a handler
// on the goroutine that read them, instead of through the agent's buffer
// to whoever calls Conn.Read. In pion/webrtc that reader is a goroutine
// of its own that copies each packet once more into the buffer of the
// DTLS connection: one copy, one buffer and one goroutine hand-off per
// packet fewer, and no packets dropped when that goroutine falls behind.

// datagramMTU is the read buffer of a candidate: a whole UDP datagram
// (pion reads 8192 bytes, receiveMTU), for the 64 KiB SCTP packets two
// ferry Go peers send each other on one host.
const datagramMTU = 65536 + 512

// packetDelivery routes received application packets.
type packetDelivery struct {
	mu      sync.RWMutex // held for reading while a packet is delivered
	handler func([]byte)
}

// deliver hands b to the handler, or queues it for Read.
func (a *Agent) deliver(b []byte) (int, error) {
	d := &a.delivery
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.handler != nil {
		d.handler(b)

		return len(b), nil
	}

	return a.buf.Write(b)
}

// SetPacketHandler makes the connection hand every application packet it
// receives to h, on the goroutine that received it, instead of queueing
// it for Read; packets queued so far are handed over first, in order. h
// may be called from several goroutines at once (one per local
// candidate) and must not keep b. Read must not be used afterwards.
func (c *Conn) SetPacketHandler(h func(b []byte)) {
	d := &c.agent.delivery
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handler != nil {
		return
	}
	wrapped := func(b []byte) {
		c.bytesReceived.Add(uint64(len(b)))
		h(b)
	}
	// Nothing writes to the buffer while we hold the lock, and nothing
	// reads it but us: hand over what it holds.
	buf := make([]byte, datagramMTU)
	for c.agent.buf.Count() > 0 {
		n, err := c.agent.buf.Read(buf)
		if err != nil {
			break // closed
		}
		wrapped(buf[:n])
	}
	d.handler = wrapped
}
