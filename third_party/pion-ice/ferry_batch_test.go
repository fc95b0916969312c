// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ice

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
)

// batchNet gives the agent sockets that take batches (as ferry's
// internal/udpbatch does), sending the datagrams one by one and counting
// the batches.
type batchNet struct {
	*stdnet.Net
	batches *atomic.Int64
}

type batchSocket struct {
	*net.UDPConn
	batches *atomic.Int64
}

func (s *batchSocket) WriteBatchToAddrPort(b []byte, seg int, addr netip.AddrPort) error {
	s.batches.Add(1)
	for off := 0; off < len(b); off += seg {
		if _, err := s.WriteToUDPAddrPort(b[off:min(off+seg, len(b))], addr); err != nil {
			return err
		}
	}

	return nil
}

func (n *batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}

	return &batchSocket{UDPConn: c, batches: n.batches}, nil
}

func (n *batchNet) ListenPacket(network, address string) (net.PacketConn, error) {
	pc, err := net.ListenPacket(network, address)
	if c, ok := pc.(*net.UDPConn); ok && err == nil {
		return &batchSocket{UDPConn: c, batches: n.batches}, nil
	}

	return pc, err
}

// A batch written with WriteBatch arrives as its packets, in order, each
// counted as sent; through a socket that takes batches it is handed over
// whole (ferry patch).
func TestFerryWriteBatch(t *testing.T) {
	for _, batching := range []bool{true, false} {
		var batches atomic.Int64
		// No mDNS: its socket must not be wrapped.
		cfg := &AgentConfig{NetworkTypes: []NetworkType{NetworkTypeUDP4}, MulticastDNSMode: MulticastDNSModeDisabled}
		if batching {
			sn, err := stdnet.NewNet()
			if err != nil {
				t.Fatal(err)
			}
			cfg.Net = &batchNet{Net: sn, batches: &batches}
		}
		aConn, bConn := pipe(t, cfg)
		var mu sync.Mutex
		var got [][]byte
		all := make(chan struct{})
		const seg, n = 1000, 11
		bConn.SetPacketHandler(func(b []byte) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, bytes.Clone(b))
			if len(got) == n {
				close(all)
			}
		})
		var buf []byte
		var want [][]byte
		for i := range n {
			size := seg
			if i == n-1 {
				size = 300
			}
			p := bytes.Repeat([]byte{0x40 | byte(i)}, size) // not STUN
			want = append(want, p)
			buf = append(buf, p...)
		}
		sent0 := aConn.BytesSent()
		if k, err := aConn.WriteBatch(buf, seg); err != nil || k != len(buf) {
			t.Fatalf("batching %v: WriteBatch: %d, %v", batching, k, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		select {
		case <-all:
		case <-ctx.Done():
			mu.Lock()
			k := len(got)
			mu.Unlock()
			t.Fatalf("batching %v: got %d of %d packets", batching, k, n)
		}
		cancel()
		mu.Lock()
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("batching %v: packet %d: %d bytes of %x, want %d of %x", batching, i, len(got[i]), got[i][0], len(want[i]), want[i][0])
			}
		}
		mu.Unlock()
		if d := aConn.BytesSent() - sent0; d != uint64(len(buf)) {
			t.Fatalf("batching %v: BytesSent grew by %d, want %d", batching, d, len(buf))
		}
		if batching && batches.Load() != 1 {
			t.Fatalf("the socket got %d batches, want 1", batches.Load())
		}
	}
}
