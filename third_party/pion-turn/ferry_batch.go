// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package turn

import (
	"net"
	"net/netip"
)

// ferry patch: a batch of equal-sized datagrams for the TURN server (a
// relay connection's ChannelData messages) goes to the client's socket in
// one call when the socket takes batches (ferry's internal/udpbatch: one
// sendmsg with UDP GSO); else one by one, as WriteTo sends them.

type batchSocket interface {
	WriteBatchToAddrPort(b []byte, seg int, addr netip.AddrPort) error
}

// WriteBatchTo sends b, datagrams of seg bytes each (the last may be
// shorter), to to.
func (c *Client) WriteBatchTo(b []byte, seg int, to net.Addr) error {
	if seg <= 0 || seg > len(b) {
		seg = len(b)
	}
	if bs, ok := c.conn.(batchSocket); ok {
		if ua, ok := to.(*net.UDPAddr); ok {
			return bs.WriteBatchToAddrPort(b, seg, ua.AddrPort())
		}
	}
	for off := 0; off < len(b); off += seg {
		if _, err := c.conn.WriteTo(b[off:min(off+seg, len(b))], to); err != nil {
			return err
		}
	}

	return nil
}
