// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import (
	"bytes"
	"context"
	"testing"

	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/wire"
)

// nopStreamSender is a streamSender that counts retransmission signals.
type nopStreamSender struct{ retransmissions int }

func (*nopStreamSender) onHasConnectionData()                           {}
func (*nopStreamSender) onHasStreamData(protocol.StreamID, *SendStream) {}
func (n *nopStreamSender) onHasStreamRetransmission(protocol.StreamID, *SendStream) {
	n.retransmissions++
}
func (*nopStreamSender) onHasStreamControlFrame(protocol.StreamID, streamControlFrameGetter) {
}
func (*nopStreamSender) updateStreamPriority(protocol.StreamID)                    {}
func (*nopStreamSender) recordStreamPriorityUpdated(protocol.StreamID, int8, bool) {}
func (*nopStreamSender) onStreamCompleted(protocol.StreamID)                       {}
func (*nopStreamSender) onStreamCreditReleased(protocol.StreamID)                  {}

// A lost STREAM frame is queued twice on a stream that duplicates
// retransmissions, once otherwise; both copies carry the frame's data and
// both count as outstanding until acknowledged or lost.
func TestFerryDuplicateRetransmissions(t *testing.T) {
	for _, dup := range []bool{false, true} {
		sender := &nopStreamSender{}
		s := newSendStream(context.Background(), 4, sender, nil, false)
		s.duplicateRetransmissions = dup
		data := bytes.Repeat([]byte{0xab}, 1200)
		f := wire.GetStreamFrame()
		f.StreamID, f.Offset = 4, 1<<20
		f.Data = append(f.Data[:0], data...)
		s.numOutstandingFrames = 1 // f was sent
		(*sendStreamAckHandler)(s).OnLost(f)
		if sender.retransmissions != 1 {
			t.Fatalf("dup %v: %d retransmission signals, want 1", dup, sender.retransmissions)
		}
		want := 1
		if dup {
			want = 2
		}
		var popped []*wire.StreamFrame
		for {
			sf, _ := s.popRetransmissionFrame(protocol.MaxPacketBufferSize, protocol.Version1)
			if sf.Frame == nil {
				break
			}
			popped = append(popped, sf.Frame)
		}
		if len(popped) != want {
			t.Fatalf("dup %v: %d frames retransmitted, want %d", dup, len(popped), want)
		}
		for _, p := range popped {
			if p.StreamID != 4 || p.Offset != 1<<20 || !bytes.Equal(p.Data, data) || !p.DataLenPresent {
				t.Fatalf("dup %v: retransmitted stream %d offset %d, %d bytes; want stream 4, offset %d, the lost frame's data", dup, p.StreamID, p.Offset, len(p.Data), 1<<20)
			}
		}
		if popped[0] == popped[len(popped)-1] && dup {
			t.Fatal("both copies are one frame: acknowledging one would return it to the pool under the other")
		}
		if s.numOutstandingFrames != int64(want) {
			t.Fatalf("dup %v: %d frames outstanding, want %d", dup, s.numOutstandingFrames, want)
		}
		for _, p := range popped {
			(*sendStreamAckHandler)(s).OnAcked(p)
		}
		if s.numOutstandingFrames != 0 {
			t.Fatalf("dup %v: %d frames outstanding after the acknowledgements", dup, s.numOutstandingFrames)
		}
	}
}

// A frame whose data does not fit a pooled frame is not copied.
func TestFerryDuplicateTooLarge(t *testing.T) {
	f := &wire.StreamFrame{StreamID: 4, Data: make([]byte, protocol.MaxPacketBufferSize+1)}
	if duplicateStreamFrame(f) != nil {
		t.Fatal("copied a frame larger than a pooled one")
	}
}
