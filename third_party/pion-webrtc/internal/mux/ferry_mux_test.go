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

// QUIC packets (RFC 9443: first byte 64..127 or 192..255) reach the QUIC
// endpoint, with direct dispatch too; STUN, DTLS and RTP keep going where
// they went, and no DTLS packet is taken (ferry patch).
func TestFerryQUICEndpoint(t *testing.T) {
	for b := 0; b < 256; b++ {
		quic := (b >= 64 && b <= 127) || b >= 192
		if MatchQUIC([]byte{byte(b)}) != quic {
			t.Fatalf("MatchQUIC(%d) = %v", b, !quic)
		}
		if quic && (MatchDTLS([]byte{byte(b)}) || MatchSRTPOrSRTCP([]byte{byte(b)}) || b <= 3) {
			t.Fatalf("first byte %d matches QUIC and another protocol", b)
		}
	}
	if MatchQUIC(nil) {
		t.Fatal("MatchQUIC(empty)")
	}

	conn := &handlerConn{}
	m := NewMux(Config{Conn: conn, BufferSize: 8192, LoggerFactory: logging.NewDefaultLoggerFactory()})
	// A QUIC Initial that arrives before the endpoint exists waits for it.
	conn.handler([]byte{0xc3, 0, 0, 0, 1})
	dtls := m.NewEndpoint(MatchDTLS)
	srtp := m.NewEndpoint(MatchSRTPOrSRTCP)
	quic := m.NewEndpoint(MatchQUIC)
	read := func(e *Endpoint) []byte {
		t.Helper()
		got := make([]byte, 100)
		n, err := e.Read(got)
		if err != nil {
			t.Fatal(err)
		}
		return got[:n]
	}
	// The queue is handed over on a goroutine of its own: read it first.
	if got := read(quic); !bytes.Equal(got, []byte{0xc3, 0, 0, 0, 1}) {
		t.Fatalf("QUIC endpoint read %v, want the queued Initial", got)
	}
	for _, p := range [][]byte{{0x40, 9}, {23, 254, 253}, {128, 96, 0, 1}, {0x7f, 8}} {
		conn.handler(p)
	}
	for _, want := range [][]byte{{0x40, 9}, {0x7f, 8}} {
		if got := read(quic); !bytes.Equal(got, want) {
			t.Fatalf("QUIC endpoint read %v, want %v", got, want)
		}
	}
	if got := read(dtls); !bytes.Equal(got, []byte{23, 254, 253}) {
		t.Fatalf("DTLS endpoint read %v", got)
	}
	if got := read(srtp); !bytes.Equal(got, []byte{128, 96, 0, 1}) {
		t.Fatalf("RTP endpoint read %v", got)
	}
	if err := quic.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// A handler endpoint's packets go to its handler, on the dispatching
// goroutine, the queued ones (from before it existed) too; nothing waits
// in its buffer, and other endpoints are unaffected (ferry patch).
func TestFerryHandlerEndpoint(t *testing.T) {
	conn := &handlerConn{}
	m := NewMux(Config{Conn: conn, BufferSize: 8192, LoggerFactory: logging.NewDefaultLoggerFactory()})
	conn.handler([]byte{0xc3, 1}) // before the endpoint: queued
	got := make(chan []byte, 10)
	quic := m.NewHandlerEndpoint(MatchQUIC, func(b []byte) { got <- bytes.Clone(b) })
	dtls := m.NewEndpoint(MatchDTLS)
	// The queue is handed over on a goroutine of its own.
	if b := <-got; !bytes.Equal(b, []byte{0xc3, 1}) {
		t.Fatalf("handler got %v, want the queued packet", b)
	}
	pkt := []byte{0x41, 2}
	conn.handler(pkt)
	pkt[1] = 0 // the caller reuses its buffer once dispatch returns
	conn.handler([]byte{22, 254, 253})
	if b := <-got; !bytes.Equal(b, []byte{0x41, 2}) {
		t.Fatalf("handler got %v", b)
	}
	buf := make([]byte, 100)
	if n, err := dtls.Read(buf); err != nil || !bytes.Equal(buf[:n], []byte{22, 254, 253}) {
		t.Fatalf("DTLS endpoint read %v, %v", buf[:n], err)
	}
	select {
	case b := <-got:
		t.Fatalf("handler got a DTLS packet %v", b)
	default:
	}
	// Reads wait for Close.
	done := make(chan error, 1)
	go func() { _, err := quic.Read(buf); done <- err }()
	if err := quic.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("a read on a closed handler endpoint returned data")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
