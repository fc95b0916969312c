// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package allocation

import (
	"net"

	"github.com/pion/turn/v5/internal/proto"
)

// ferry patch: when both peers relay through the same server, each packet
// left one relay socket and came back in at the other, through the kernel:
// a send, a receive and a goroutine's wake-up per packet on top of the
// relaying itself, half of such a server's work. A relay socket that
// implements LocalDeliverer (ferry's turn package) is given its
// allocation's deliverLocal, and hands a packet for another relay of the
// server straight to that allocation, which relays it to its client as if
// its socket had read it (same permission and channel checks).

// relayFrameSize holds a relayed datagram of up to rtpMTU bytes framed as
// ChannelData: header, datagram, up to 3 bytes of padding.
const relayFrameSize = proto.ChannelDataHeaderSize + rtpMTU + 3

// LocalDeliverer is a relay socket that can take its allocation's
// delivery function.
type LocalDeliverer interface {
	SetLocalDelivery(deliver func(p []byte, from net.Addr))
}

// deliverLocal relays p, from the peer address from (another relay's
// address), to the client as packetConnHandler relays a datagram its
// socket read. A datagram longer than the socket's read buffer is dropped
// (the socket would have truncated it).
func (a *Allocation) deliverLocal(p []byte, from net.Addr) {
	if len(p) > rtpMTU {
		return
	}
	a.localMu.Lock()
	defer a.localMu.Unlock()
	if a.localFrame == nil {
		a.localFrame = make([]byte, relayFrameSize)
	}
	n := copy(a.localFrame[proto.ChannelDataHeaderSize:], p)
	a.toClient(a.localFrame, n, from)
}
