// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package proto

import "encoding/binary"

// ferry patch: ChannelData framed without a ChannelData value, for the
// relay's per-packet paths (the client's batches, the server's relayed
// packets), which Encode made allocate a message each.

// ChannelDataHeaderSize is the size of a ChannelData message's header:
// channel number and length, 2 bytes each (RFC 8656 §12.4).
const ChannelDataHeaderSize = channelDataHeaderSize

// ChannelDataLen is the length of the ChannelData message that carries n
// bytes: header, data and padding to a multiple of 4 bytes.
func ChannelDataLen(n int) int {
	return nearestPaddedValueLength(ChannelDataHeaderSize + n)
}

// AppendChannelData appends p framed as a ChannelData message for channel
// number (header, p, zeros to a multiple of 4 bytes, as Encode does).
func AppendChannelData(buf []byte, number ChannelNumber, p []byte) []byte {
	buf = binary.BigEndian.AppendUint16(buf, uint16(number))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(p))) //nolint:gosec // a datagram
	buf = append(buf, p...)
	pad := nearestPaddedValueLength(len(p)) - len(p)

	return append(buf, make([]byte, pad)...)
}

// FrameChannelData frames the n bytes at frame[ChannelDataHeaderSize:] in
// place as a ChannelData message for channel number and returns the
// message. frame must have room for the header, the data and 3 bytes of
// padding.
func FrameChannelData(frame []byte, number ChannelNumber, n int) []byte {
	binary.BigEndian.PutUint16(frame[0:], uint16(number))
	binary.BigEndian.PutUint16(frame[2:], uint16(n)) //nolint:gosec // a datagram
	end, padded := ChannelDataHeaderSize+n, ChannelDataLen(n)
	clear(frame[end:padded])

	return frame[:padded]
}
