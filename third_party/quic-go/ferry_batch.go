// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import (
	"net"

	"github.com/quic-go/quic-go/internal/protocol"
)

// BatchPacketConn is a net.PacketConn that sends a GSO batch itself
// (ferry patch): quic-go packs packets of equal size into one buffer for
// UDP GSO only on a socket of its own (a *net.UDPConn); ferry's QUIC runs
// on a WebRTC ICE connection, which writes such a batch to its socket in
// one call. Given a BatchPacketConn, a Transport sends every packet
// through WriteBatch, single ones included (batches of one), so that
// they leave in the order they were packed.
type BatchPacketConn interface {
	net.PacketConn
	// WriteBatch sends b, datagrams of segSize bytes each (the last may be
	// shorter), to addr.
	WriteBatch(b []byte, segSize int, addr net.Addr) error
}

// ferryBatchConn is a rawConn over a BatchPacketConn: reads as basicConn,
// writes in batches.
type ferryBatchConn struct {
	basicConn
	bc BatchPacketConn
}

var _ rawConn = &ferryBatchConn{}

func (c *ferryBatchConn) WritePacket(b []byte, addr net.Addr, _ []byte, gsoSize uint16, ecn protocol.ECN) (int, error) {
	if ecn != protocol.ECNUnsupported {
		panic("cannot use ECN with a BatchPacketConn")
	}
	seg := int(gsoSize)
	if seg == 0 {
		seg = len(b)
	}
	if err := c.bc.WriteBatch(b, seg, addr); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *ferryBatchConn) capabilities() connCapabilities {
	return connCapabilities{DF: c.supportsDF, GSO: true}
}
