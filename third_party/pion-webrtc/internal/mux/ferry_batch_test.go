// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package mux

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
)

// recordConn records what is written to it, packet by packet.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(b))

	return len(b), nil
}
func (c *recordConn) Read([]byte) (int, error) { select {} }
func (c *recordConn) Close() error             { return nil }

// batchConn takes batches whole.
type batchConn struct {
	recordConn
	batches []int // segment sizes
	err     error
}

func (c *batchConn) WriteBatch(b []byte, seg int) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.batches = append(c.batches, seg)
	c.writes = append(c.writes, bytes.Clone(b))

	return len(b), nil
}

// An endpoint's WriteBatch hands a batch to an ICE connection that takes
// batches whole, with Write's error mapping, and splits it into packets
// for one that does not (ferry patch).
func TestFerryEndpointWriteBatch(t *testing.T) {
	b := append(bytes.Repeat([]byte{0x41}, 1000), bytes.Repeat([]byte{0x42}, 1000)...)
	b = append(b, 0x43, 0x43)

	plain := &recordConn{}
	m := NewMux(Config{Conn: plain, BufferSize: 8192, LoggerFactory: logging.NewDefaultLoggerFactory()})
	e := m.NewEndpoint(MatchQUIC)
	if n, err := e.WriteBatch(b, 1000); err != nil || n != len(b) {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	if len(plain.writes) != 3 || len(plain.writes[0]) != 1000 || len(plain.writes[2]) != 2 || plain.writes[1][0] != 0x42 {
		t.Fatalf("split into %d writes", len(plain.writes))
	}

	bc := &batchConn{}
	m = NewMux(Config{Conn: bc, BufferSize: 8192, LoggerFactory: logging.NewDefaultLoggerFactory()})
	e = m.NewEndpoint(MatchQUIC)
	if n, err := e.WriteBatch(b, 1000); err != nil || n != len(b) {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	if len(bc.batches) != 1 || bc.batches[0] != 1000 || !bytes.Equal(bc.writes[0], b) {
		t.Fatalf("batches %v", bc.batches)
	}
	bc.err = ice.ErrClosed
	if _, err := e.WriteBatch(b, 1000); err != io.ErrClosedPipe {
		t.Fatalf("closed: %v", err)
	}
	bc.err = ice.ErrNoCandidatePairs
	if n, err := e.WriteBatch(b, 1000); n != 0 || err != nil {
		t.Fatalf("no pair yet: %d, %v", n, err)
	}
}
