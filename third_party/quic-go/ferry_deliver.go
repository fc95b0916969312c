// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import (
	"net"
	"time"

	"github.com/quic-go/quic-go/internal/monotime"
	"github.com/quic-go/quic-go/internal/protocol"
)

// Deliver hands the transport a packet that from sent, as if its
// connection had read it (ferry patch). ferry's QUIC runs on a WebRTC ICE
// connection whose own goroutine reads the socket: delivering there saves
// a buffer between goroutines, a copy and a goroutine hand-off per packet.
// The transport's read loop then gets nothing from its connection. Deliver
// may be called from several goroutines; data is copied. When the
// connection's queue of unprocessed packets is full, Deliver waits up to
// maxDeliverWait for room before it drops the packet: the caller then
// stops reading its socket, whose buffer absorbs the burst, as it does for
// a connection that reads for itself.
func (t *Transport) Deliver(data []byte, from net.Addr) {
	if len(data) == 0 || len(data) > protocol.MaxPacketBufferSize {
		return
	}
	if err := t.init(false); err != nil {
		return
	}
	buf := getPacketBuffer()
	buf.Data = buf.Data[:protocol.MaxPacketBufferSize]
	n := copy(buf.Data, data)
	t.handlePacket(receivedPacket{
		remoteAddr: from,
		rcvTime:    monotime.Now(),
		data:       buf.Data[:n],
		buffer:     buf,
		wait:       true,
	})
}

// maxDeliverWait bounds how long Deliver holds its caller (which may also
// serve other traffic of the socket, such as ICE consent checks) when the
// connection has fallen behind.
const maxDeliverWait = 100 * time.Millisecond
