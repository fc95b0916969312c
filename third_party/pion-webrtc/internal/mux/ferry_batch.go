// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package mux

import (
	"errors"
	"io"

	"github.com/pion/ice/v4"
)

// ferry patch: quic-go packs its packets into GSO batches of equal-sized
// datagrams; WriteBatch hands such a batch to the ICE connection whole
// (our pion/ice's Conn.WriteBatch), which sends it to the selected pair's
// socket with one call.

// batchWriter is a connection that writes a batch of packets in one call.
type batchWriter interface {
	WriteBatch(b []byte, segSize int) (int, error)
}

// The ICE connection pion/webrtc gives the mux is one: batches would
// quietly go out one by one if the signatures drifted apart.
var _ batchWriter = (*ice.Conn)(nil)

// WriteBatch writes b, packets of segSize bytes each (the last may be
// shorter), as Write would write them one by one, with Write's errors.
func (e *Endpoint) WriteBatch(b []byte, segSize int) (int, error) {
	if segSize <= 0 || segSize > len(b) {
		segSize = len(b)
	}
	bw, ok := e.mux.nextConn.(batchWriter)
	if !ok {
		for off := 0; off < len(b); off += segSize {
			if _, err := e.Write(b[off:min(off+segSize, len(b))]); err != nil {
				return off, err
			}
		}

		return len(b), nil
	}
	n, err := bw.WriteBatch(b, segSize)
	if errors.Is(err, ice.ErrNoCandidatePairs) {
		return 0, nil
	} else if errors.Is(err, ice.ErrClosed) {
		return 0, io.ErrClosedPipe
	}

	return n, err
}
