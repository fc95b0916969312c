// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import "github.com/quic-go/quic-go/internal/wire"

// duplicateStreamFrame copies a lost STREAM frame, so that its data is
// retransmitted twice (ferry patch). A stream is delivered in order, so a
// retransmission that is lost too holds everything behind it for another
// round trip and more; with random loss p that happens to a share p of
// the losses, many times a second at 1 % loss and 100 MB/s, and each time
// the receiver's window fills and the sender stalls. Two copies make it
// p squared, for p more bytes on the wire. Only with Config.LossTolerance
// set: a connection that treats random loss as noise, not congestion. nil
// when the data does not fit a pooled frame (then only one copy goes).
func duplicateStreamFrame(f *wire.StreamFrame) *wire.StreamFrame {
	dup := wire.GetStreamFrame()
	if len(f.Data) > cap(dup.Data) {
		dup.PutBack()
		return nil
	}
	dup.StreamID, dup.Offset, dup.Fin, dup.DataLenPresent = f.StreamID, f.Offset, f.Fin, f.DataLenPresent
	dup.Data = append(dup.Data[:0], f.Data...)
	return dup
}
