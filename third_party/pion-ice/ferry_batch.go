// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ice

import (
	"errors"
	"io"
	"net/netip"
)

// ferry patch: a batch of equal-sized packets (quic-go's GSO batches) goes
// to the selected pair's socket in one call, which a batching socket (ferry's
// internal/udpbatch) sends with one sendmsg, without copying it. Written
// packet by packet, each crossed this connection, the pair and the socket's
// queue on its own, and was copied twice: a fifth of a QUIC sender's CPU.

// batchWriter is a socket that sends such a batch itself.
type batchWriter interface {
	WriteBatchToAddrPort(b []byte, seg int, addr netip.AddrPort) error
}

// ferryBatchWriter is the candidate's socket as a batchWriter, if it is one.
func (c *candidateBase) ferryBatchWriter() batchWriter {
	bw, _ := c.conn.(batchWriter)

	return bw
}

// WriteBatch writes b, packets of segSize bytes each (the last may be
// shorter; one packet if segSize is 0 or covers b), to the selected pair,
// as Write would write them one by one. It
// follows the selected pair as Write does; where the pair's socket cannot
// send a batch (a relay, no selected pair yet), the packets go one by one.
// b must not hold STUN messages.
func (c *Conn) WriteBatch(b []byte, segSize int) (int, error) {
	if segSize <= 0 || segSize > len(b) {
		segSize = len(b) // one packet: still past the socket's queue, in order
	}
	if err := c.agent.loop.Err(); err != nil {
		return 0, err
	}
	pair := c.agent.getSelectedPair()
	var bw batchWriter
	var to netip.AddrPort
	if pair != nil {
		if l, ok := pair.Local.(interface{ ferryBatchWriter() batchWriter }); ok {
			bw, to = l.ferryBatchWriter(), pair.Remote.addrPort()
		}
	}
	if bw == nil || !to.IsValid() {
		for off := 0; off < len(b); off += segSize {
			if _, err := c.Write(b[off:min(off+segSize, len(b))]); err != nil {
				return off, err
			}
		}

		return len(b), nil
	}
	if err := bw.WriteBatchToAddrPort(b, segSize, to); err != nil {
		// As writeTo: only a closed pipe is the caller's business; a
		// socket closed under a dying agent is packet loss.
		if errors.Is(err, io.ErrClosedPipe) {
			return 0, err
		}
		c.agent.log.Infof("Failed to send packets: %v", err)

		return len(b), nil
	}
	c.bytesSent.Add(uint64(len(b)))
	for off := 0; off < len(b); off += segSize {
		pair.UpdatePacketSent(min(segSize, len(b)-off))
	}
	if l, ok := pair.Local.(interface{ seen(bool) }); ok {
		l.seen(true)
	}

	return len(b), nil
}
