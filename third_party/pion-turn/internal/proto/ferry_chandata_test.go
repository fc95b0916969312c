// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package proto

import (
	"bytes"
	"testing"
)

// TestFerryChannelDataFraming: the ferry patch's framings give the bytes
// Encode gives, for every padding, and FrameChannelData clears padding
// left over from a longer packet in the same buffer (the sizes go up to
// 64 bytes, then down again).
func TestFerryChannelDataFraming(t *testing.T) {
	frame := bytes.Repeat([]byte{0xee}, ChannelDataHeaderSize+64+3)
	var sizes []int
	for n := 0; n <= 64; n++ {
		sizes = append(sizes, n)
	}
	for n := 64; n >= 0; n-- {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		data := bytes.Repeat([]byte{byte(n)}, n)
		want := &ChannelData{Number: MinChannelNumber + ChannelNumber(n), Data: data}
		want.Encode()
		copy(frame[ChannelDataHeaderSize:], data)
		if ChannelDataLen(n) != len(want.Raw) {
			t.Fatalf("ChannelDataLen(%d) = %d, want %d", n, ChannelDataLen(n), len(want.Raw))
		}
		if got := FrameChannelData(frame, want.Number, n); !bytes.Equal(got, want.Raw) {
			t.Fatalf("FrameChannelData, %d bytes: % x, want % x", n, got, want.Raw)
		}
		if got := AppendChannelData([]byte{1}, want.Number, data); !bytes.Equal(got[1:], want.Raw) || got[0] != 1 {
			t.Fatalf("AppendChannelData, %d bytes: % x, want 01 % x", n, got, want.Raw)
		}
		dec := &ChannelData{Raw: FrameChannelData(frame, want.Number, n)}
		if err := dec.Decode(); err != nil || !bytes.Equal(dec.Data, data) || dec.Number != want.Number {
			t.Fatalf("decoding %d bytes: %v", n, err)
		}
	}
	if a := testing.AllocsPerRun(100, func() { FrameChannelData(frame, MinChannelNumber, 60) }); a != 0 {
		t.Fatalf("%v allocations per framing", a)
	}
}
