// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package client

import (
	"bytes"
	"net"
	"testing"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5/internal/proto"
)

// batchRecorder is a client that records the batches it is given.
type batchRecorder struct {
	batches [][]byte
	segs    []int
	writes  int
}

func (r *batchRecorder) WriteTo([]byte, net.Addr) (int, error) { r.writes++; return 0, nil }
func (r *batchRecorder) PerformTransaction(*stun.Message, net.Addr, bool) (TransactionResult, error) {
	return TransactionResult{}, errFake
}
func (r *batchRecorder) OnDeallocated(net.Addr) {}

func (r *batchRecorder) WriteBatchTo(b []byte, seg int, _ net.Addr) error {
	r.batches = append(r.batches, bytes.Clone(b))
	r.segs = append(r.segs, seg)

	return nil
}

// A batch for a peer with a permission and a bound channel goes to the
// client whole, as equal-sized ChannelData messages on that channel (the
// last one shorter), each decoding to its packet (ferry patch).
func TestFerryWriteBatchChannelData(t *testing.T) {
	rec := &batchRecorder{}
	c := ferryConn()
	c.client, c.permMap, c.bindingMgr = rec, newPermissionMap(), newBindingManager()
	c.serverAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478}
	perm := &permission{}
	perm.setState(permStatePermitted)
	c.permMap.insert(ferryPeer, perm)
	bound := c.bindingMgr.create(ferryPeer)
	bound.setState(bindingStateReady)

	var pkts [][]byte
	var b []byte
	for i, size := range []int{1001, 1001, 1001, 7} { // 1001: padded to 1008 with the header
		p := bytes.Repeat([]byte{byte(0x40 + i)}, size)
		pkts = append(pkts, p)
		b = append(b, p...)
	}
	if err := c.WriteBatchToAddrPort(b, 1001, ferryPeer.AddrPort()); err != nil {
		t.Fatal(err)
	}
	if len(rec.batches) != 1 || rec.segs[0] != 1008 || rec.writes != 0 {
		t.Fatalf("%d batches, segment sizes %v, %d single writes; want one batch of 1008-byte segments", len(rec.batches), rec.segs, rec.writes)
	}
	got := rec.batches[0]
	if len(got) != 3*1008+12 {
		t.Fatalf("batch of %d bytes, want %d", len(got), 3*1008+12)
	}
	for i, p := range pkts {
		end := min((i+1)*1008, len(got))
		ch := proto.ChannelData{Raw: got[i*1008 : end]}
		if err := ch.Decode(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if uint16(ch.Number) != bound.number || !bytes.Equal(ch.Data, p) {
			t.Fatalf("message %d: channel %d, %d bytes; want channel %d, %d bytes", i, ch.Number, len(ch.Data), bound.number, len(p))
		}
	}

	// Not bound yet: packet by packet, through WriteTo (which binds).
	rec.batches, rec.segs = nil, nil
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 9}
	_ = c.WriteBatchToAddrPort(b, 1001, other.AddrPort())
	if len(rec.batches) != 0 {
		t.Fatalf("a batch for an unbound peer went out whole")
	}
}
