// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package dtls

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// ReadPacket is Read without the copy (ferry patch): it returns the
// payload of the next application data record in a buffer of its own,
// which the caller may keep. SCTP reads each packet this way and hands
// its chunks to the reassembly queue as they are.
func (c *Conn) ReadPacket() ([]byte, error) {
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	for {
		select {
		case <-c.closed.Done():
			return nil, io.EOF
		case <-c.readDeadline.Done():
			return nil, errDeadlineExceeded
		case out, ok := <-c.decrypted:
			if !ok {
				return nil, io.EOF
			}
			switch val := out.(type) {
			case []byte:
				return val, nil
			case error:
				return nil, val
			}
		}
	}
}

// ferry patch: application data is sealed straight into one pooled buffer.
// pion marshalled the record (two copies of the payload into fresh
// buffers) and then encrypted it into a third; with 64 KiB records between
// Go peers those allocations and copies cost more than AES-GCM itself.

// recordSealer is implemented by the AEAD cipher suites (GCM).
type recordSealer interface {
	SealRecord(dst []byte, h *recordlayer.Header, payload []byte) ([]byte, error)
}

// maxSealedOverhead bounds what a sealed record adds to its payload: the
// header, the explicit nonce and the tag.
const maxSealedOverhead = recordlayer.FixedHeaderSize + 8 + 16

// maxSealedPayload is the largest payload the fast path seals: the record
// must fit the pooled buffer, and its length field (nonce, payload and
// tag) 16 bits.
const maxSealedPayload = min(inboundBufferSize-maxSealedOverhead, 0xffff-8-16)

var sealPool = sync.Pool{ //nolint:gochecknoglobals
	New: func() any {
		b := make([]byte, 0, inboundBufferSize)

		return &b
	},
}

// writeApplicationData sends payload as one record through the fast path;
// handled is false when the path does not apply (connection IDs, a cipher
// suite without SealRecord, a payload larger than the pooled buffers) and
// the caller must use writePackets.
func (c *Conn) writeApplicationData(ctx context.Context, payload []byte) (handled bool, err error) {
	if len(payload) > maxSealedPayload {
		return false, nil
	}
	c.writeLock.Lock()
	defer c.writeLock.Unlock()

	c.lock.Lock()
	sealer, ok := c.state.cipherSuite.(recordSealer)
	if !ok || len(c.state.remoteConnectionID) > 0 || !c.state.cipherSuite.IsInitialized() {
		c.lock.Unlock()

		return false, nil
	}
	epoch := c.state.getLocalEpoch()
	for len(c.state.localSequenceNumber) <= int(epoch) {
		c.state.localSequenceNumber = append(c.state.localSequenceNumber, uint64(0))
	}
	seq := atomic.AddUint64(&c.state.localSequenceNumber[epoch], 1) - 1
	if seq > recordlayer.MaxSequenceNumber {
		c.lock.Unlock()

		return true, errSequenceNumberOverflow
	}
	h := recordlayer.Header{
		ContentType:    protocol.ContentTypeApplicationData,
		Version:        protocol.Version1_2,
		Epoch:          epoch,
		SequenceNumber: seq,
	}
	bufPtr, _ := sealPool.Get().(*[]byte)
	defer sealPool.Put(bufPtr)
	raw, err := sealer.SealRecord((*bufPtr)[:0], &h, payload)
	rAddr := c.rAddr
	c.lock.Unlock()
	if err != nil {
		return true, err
	}
	if _, err := c.nextConn.WriteToContext(ctx, raw, rAddr); err != nil {
		if errors.Is(err, context.Canceled) && c.isConnectionClosed() {
			return true, ErrConnClosed
		}

		return true, netError(err)
	}

	return true, nil
}
