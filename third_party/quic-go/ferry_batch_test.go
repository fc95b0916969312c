// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingBatchConn is a BatchPacketConn that sends each batch's
// datagrams one by one and records the batches' shapes.
type recordingBatchConn struct {
	net.PacketConn
	mu      sync.Mutex
	batches int // batches of more than one datagram
	singles int
	plain   int // packets written with WriteTo
}

func (c *recordingBatchConn) WriteBatch(b []byte, seg int, addr net.Addr) error {
	c.mu.Lock()
	if seg < len(b) {
		c.batches++
	} else {
		c.singles++
	}
	c.mu.Unlock()
	for off := 0; off < len(b); off += seg {
		if _, err := c.PacketConn.WriteTo(b[off:min(off+seg, len(b))], addr); err != nil {
			return err
		}
	}
	return nil
}

func (c *recordingBatchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.plain++
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, addr)
}

// Over a BatchPacketConn, a transport sends all its packets through
// WriteBatch, bulk data in batches of several datagrams (ferry patch), and
// a stream's bytes arrive intact.
func TestFerryBatchPacketConn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	listen := func() *recordingBatchConn {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return &recordingBatchConn{PacketConn: pc}
	}
	sc, cc := listen(), listen()
	st, ct := &Transport{Conn: sc}, &Transport{Conn: cc}
	defer func() {
		ct.Close()
		st.Close()
	}()
	stls, ctls := ferryTLS(t)
	ln, err := st.Listen(stls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := make([]byte, 8<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			errc <- err
			return
		}
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			errc <- err
			return
		}
		b, err := io.ReadAll(s)
		if err != nil {
			errc <- err
			return
		}
		got <- b
	}()
	conn, err := ct.Dial(ctx, sc.LocalAddr(), ctls, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(payload); err != nil {
		t.Fatal(err)
	}
	s.Close()
	select {
	case b := <-got:
		if !bytes.Equal(b, payload) {
			t.Fatalf("got %d bytes, not the %d sent", len(b), len(payload))
		}
	case err := <-errc:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("the stream's bytes did not arrive")
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	t.Logf("sender: %d batches, %d single packets, %d WriteTo", cc.batches, cc.singles, cc.plain)
	if cc.batches == 0 || cc.plain != 0 {
		t.Fatalf("sender: %d batches, %d WriteTo; want batches and no WriteTo", cc.batches, cc.plain)
	}
}
