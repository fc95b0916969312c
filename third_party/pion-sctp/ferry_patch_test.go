// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package sctp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand"
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
)

// Tests of ferry's patches (FERRY.md); scripts/test-third-party.sh runs
// them with pion's own tests.

// The pooled marshal writes exactly what pion's marshal wrote.
func TestFerryMarshalMatchesUnpooled(t *testing.T) {
	rng := rand.New(rand.NewSource(1)) //nolint:gosec
	for i := range 500 {
		var chunks []chunk
		for range 1 + rng.Intn(4) {
			switch rng.Intn(3) {
			case 0:
				chunks = append(chunks, &chunkSelectiveAck{
					cumulativeTSNAck:               rng.Uint32(),
					advertisedReceiverWindowCredit: rng.Uint32(),
					gapAckBlocks:                   []gapAckBlock{{start: 2, end: 5}},
				})
			default:
				data := make([]byte, rng.Intn(3000))
				rng.Read(data)
				chunks = append(chunks, &chunkPayloadData{
					tsn: rng.Uint32(), streamIdentifier: uint16(rng.Intn(9)),
					streamSequenceNumber: uint16(rng.Intn(999)), payloadType: PayloadTypeWebRTCBinary,
					userData: data, beginningFragment: rng.Intn(2) == 0, endingFragment: rng.Intn(2) == 0,
					unordered: rng.Intn(2) == 0, immediateSack: rng.Intn(2) == 0,
					iData: rng.Intn(4) == 0, messageIdentifier: rng.Uint32(), fragmentSequenceNumber: rng.Uint32(),
				})
			}
		}
		p := &packet{sourcePort: 5000, destinationPort: 5000, verificationTag: rng.Uint32(), chunks: chunks}
		for _, checksum := range []bool{true, false} {
			want, err := p.marshalUnpooled(checksum)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.marshal(checksum)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("packet %d (checksum %v): pooled marshal differs", i, checksum)
			}
			// A recycled buffer holds old bytes: marshal must overwrite
			// all of them, padding included.
			for j := range got {
				got[j] = 0xee
			}
			putBuf(got)
		}
	}
}

func TestFerryBufClasses(t *testing.T) {
	for _, n := range []int{0, 1, 1191, 2048, 2049, 16384, 40000, 65536 + 512} {
		b := getBuf(n)
		if len(b) != n {
			t.Fatalf("getBuf(%d): len %d", n, len(b))
		}
		putBuf(b)
	}
	if b := getBuf(1 << 20); len(b) != 1<<20 {
		t.Fatalf("large buffer: len %d", len(b))
	}
	putBuf(make([]byte, 10, 3000)) // not a class: ignored
}

// A receiver whose application falls behind closes its window; reading
// must open it again at once (a window update), not when a timer fires.
// The reader here waits for the window to close before each burst of
// reads; unpatched, every such stall ends with the delayed-ack timer (200
// ms) or the sender's retransmission timer.
func TestFerryWindowUpdateOnRead(t *testing.T) {
	const (
		bufSize  = 64 << 10
		msgSize  = 16 << 10
		perBurst = bufSize / msgSize
		stalls   = 12
		msgs     = (stalls + 2) * perBurst
	)
	c0, c1 := net.Pipe()
	lf := logging.NewDefaultLoggerFactory()
	type res struct {
		a   *Association
		err error
	}
	srvCh := make(chan res, 1)
	go func() {
		a, err := Server(Config{NetConn: c1, LoggerFactory: lf, MaxReceiveBufferSize: bufSize})
		srvCh <- res{a, err}
	}()
	client, err := Client(Config{NetConn: c0, LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() //nolint:errcheck
	srv := <-srvCh
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	defer srv.a.Close() //nolint:errcheck

	out, err := client.OpenStream(1, PayloadTypeWebRTCBinary)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, msgSize)
	for i := range msgs {
		msg[0] = byte(i)
		if _, err := out.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	in, err := srv.a.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { <-ctx.Done(); _ = in.SetReadDeadline(time.Now()) }()
	buf := make([]byte, msgSize)
	for i := range msgs {
		if i%perBurst == 0 && i/perBurst < stalls {
			// Read nothing until the buffer is full and the sender knows.
			for client.RWND() >= msgSize {
				select {
				case <-ctx.Done():
					t.Fatalf("message %d: the window did not close (rwnd %d)", i, client.RWND())
				case <-time.After(time.Millisecond):
				}
			}
		}
		if _, err := io.ReadFull(in, buf); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if buf[0] != byte(i) {
			t.Fatalf("message %d arrived as %d", i, buf[0])
		}
	}
	timers := client.stats.getNumT3Timeouts() + srv.a.stats.getNumAckTimeouts()
	t.Logf("%d stalls ended by %d timer expiries", stalls, timers)
	if timers >= stalls/4 {
		t.Fatalf("%d of %d stalls waited for a timer: reading did not reopen the window", timers, stalls)
	}
}

// Fragments that arrive in order are appended without sorting; duplicates
// and late ones are still handled as before (ferry patch).
func TestFerryReassemblyInOrderPush(t *testing.T) {
	const n = 900
	frag := func(i int) *chunkPayloadData {
		return &chunkPayloadData{
			tsn: uint32(1000 + i), fragmentSequenceNumber: uint32(i), //nolint:gosec
			beginningFragment: i == 0, endingFragment: i == n-1, payloadType: PayloadTypeWebRTCBinary,
		}
	}
	// Fragments 0..n-1 except 5, then a duplicate, then 5 late.
	set, mid := newChunkSet(0, 0), newChunkSetMID(0, 0)
	for i := range n {
		if i == 5 {
			continue
		}
		complete := set.push(frag(i))
		completeMID, accepted := mid.pushAndCheck(frag(i))
		if complete || completeMID || !accepted {
			t.Fatalf("fragment %d: complete %v/%v, accepted %v", i, complete, completeMID, accepted)
		}
	}
	if set.push(frag(n - 1)) {
		t.Fatal("a duplicate completed the set")
	}
	if _, accepted := mid.pushAndCheck(frag(n - 1)); accepted {
		t.Fatal("a duplicate fragment was accepted")
	}
	if !set.push(frag(5)) {
		t.Fatal("the late fragment did not complete the set")
	}
	if complete, accepted := mid.pushAndCheck(frag(5)); !complete || !accepted {
		t.Fatal("the late fragment did not complete the MID set")
	}
	for i := range n {
		if set.chunks[i].tsn != uint32(1000+i) || mid.chunks[i].fragmentSequenceNumber != uint32(i) { //nolint:gosec
			t.Fatalf("fragment %d out of order", i)
		}
	}
	if len(set.chunks) != n || len(mid.chunks) != n {
		t.Fatalf("%d/%d fragments, want %d", len(set.chunks), len(mid.chunks), n)
	}
}

// marshalUnpooled is pion's marshal before the ferry patch: the oracle the
// pooled one is checked against.
func (p *packet) marshalUnpooled(doChecksum bool) ([]byte, error) {
	raw := make([]byte, packetHeaderSize)

	// Populate static headers
	// 8-12 is Checksum which will be populated when packet is complete
	binary.BigEndian.PutUint16(raw[0:], p.sourcePort)
	binary.BigEndian.PutUint16(raw[2:], p.destinationPort)
	binary.BigEndian.PutUint32(raw[4:], p.verificationTag)

	// Populate chunks
	for _, c := range p.chunks {
		chunkRaw, err := c.marshal()
		if err != nil {
			return nil, err
		}
		raw = append(raw, chunkRaw...) //nolint:makezero // todo:fix

		paddingNeeded := getPadding(len(raw))
		if paddingNeeded != 0 {
			raw = append(raw, make([]byte, paddingNeeded)...) //nolint:makezero // todo:fix
		}
	}

	if doChecksum {
		// golang CRC32C uses reflected input and reflected output, the
		// net result of this is to have the bytes flipped compared to
		// the non reflected variant that the spec expects.
		//
		// Use LittleEndian.PutUint32 to avoid flipping the bytes in to
		// the spec compliant checksum order
		binary.LittleEndian.PutUint32(raw[8:], generatePacketChecksum(raw))
	}

	return raw, nil
}
