// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package client

import (
	"net"
	"net/netip"
	"sync"

	"github.com/pion/turn/v5/internal/proto"
)

// ferry patch: a batch of equal-sized packets for one peer (quic-go's GSO
// batches, through pion/ice's Conn.WriteBatch) is framed as ChannelData
// messages of equal size in one buffer and handed to the client's socket
// whole (Client.WriteBatchTo), which a batching socket sends with one
// sendmsg. Written one by one, each packet was encoded into a fresh
// message and crossed the socket's queue on its own.

// batchClient is a client that sends a batch of datagrams in one call.
type batchClient interface {
	WriteBatchTo(b []byte, seg int, to net.Addr) error
}

// maxBatchFrames and maxBatchBytes bound the messages framed into one
// buffer, as the kernel bounds a GSO send (segments, one datagram's size).
const (
	maxBatchFrames = 64
	maxBatchBytes  = 65000
)

// pion/ice's relay candidates send batches to a connection with this
// method (its ferry_batch.go).
var _ interface {
	WriteBatchToAddrPort(b []byte, seg int, addr netip.AddrPort) error
} = (*UDPConn)(nil)

var batchBufs = sync.Pool{New: func() any { return new([]byte) }} //nolint:gochecknoglobals

// WriteBatchToAddrPort sends b, packets of seg bytes each (the last may be
// shorter), to the peer at addr, as WriteTo would send them one by one.
// Until the peer has a permission and a bound channel, and when the client
// cannot send batches, the packets go through WriteTo.
func (c *UDPConn) WriteBatchToAddrPort(b []byte, seg int, addr netip.AddrPort) error {
	if seg <= 0 || seg > len(b) {
		seg = len(b)
	}
	to := net.UDPAddrFromAddrPort(addr)
	bc, batching := c.client.(batchClient)
	perm, permitted := c.permMap.find(to)
	bound, isBound := c.bindingMgr.findByAddr(to)
	if !batching || len(b) == 0 || c.isClosed() || !permitted || perm.state() != permStatePermitted ||
		!isBound || !bound.ok() {
		for off := 0; off < len(b); off += seg {
			if _, err := c.WriteTo(b[off:min(off+seg, len(b))], to); err != nil {
				return err
			}
		}

		return nil
	}
	// Each message (RFC 8656 §12.4): channel number and length, 2 bytes
	// each, the packet, zeros to a multiple of 4 bytes, as
	// proto.ChannelData encodes it.
	frame := proto.ChannelDataLen(seg)
	bp := batchBufs.Get().(*[]byte) //nolint:forcetypeassert
	defer batchBufs.Put(bp)
	for off := 0; off < len(b); {
		buf := (*bp)[:0]
		for k := 0; k < maxBatchFrames && off < len(b) && len(buf)+frame <= maxBatchBytes; k++ {
			p := b[off:min(off+seg, len(b))]
			off += len(p)
			buf = proto.AppendChannelData(buf, proto.ChannelNumber(bound.number), p)
		}
		*bp = buf
		if err := bc.WriteBatchTo(buf, frame, c.serverAddr); err != nil {
			return err
		}
	}

	return nil
}
