// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package mux

import (
	"bytes"
	"net"
	"testing"

	"github.com/pion/logging"
)

// handlerConn is an ICE connection that delivers packets to a handler
// (ferry's pion/ice patch).
type handlerConn struct {
	net.Conn
	handler func([]byte)
	closed  bool
}

func (c *handlerConn) SetPacketHandler(h func([]byte)) { c.handler = h }
func (c *handlerConn) Close() error                    { c.closed = true; return nil }

// With a connection that hands packets over, the mux dispatches them on
// the caller's goroutine and runs no read loop of its own (ferry patch).
func TestFerryDirectDispatch(t *testing.T) {
	conn := &handlerConn{}
	m := NewMux(Config{Conn: conn, BufferSize: 8192, LoggerFactory: logging.NewDefaultLoggerFactory()})
	if !m.direct || conn.handler == nil {
		t.Fatal("mux did not take the packet handler")
	}
	dtls := m.NewEndpoint(MatchDTLS)
	// 20..63 is DTLS (RFC 7983); the handler's buffer is reused by the
	// caller once it returns.
	pkt := []byte{22, 254, 253, 0, 1, 2, 3}
	conn.handler(pkt)
	pkt[1] = 0
	got := make([]byte, 100)
	n, err := dtls.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:n], []byte{22, 254, 253, 0, 1, 2, 3}) {
		t.Fatalf("endpoint read %v", got[:n])
	}
	if err := m.Close(); err != nil { // returns without a read loop to wait for
		t.Fatal(err)
	}
	if !conn.closed {
		t.Fatal("connection not closed")
	}
}
