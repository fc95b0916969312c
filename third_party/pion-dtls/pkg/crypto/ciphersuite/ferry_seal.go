// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ciphersuite

import (
	"encoding/binary"

	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// SealRecord (ferry patch) appends to dst the whole protected record for
// payload: header (h, without connection ID), explicit nonce, ciphertext and
// tag. It writes what Encrypt writes for a record that RecordLayer.Marshal
// made from h and payload, without the two copies of the payload that
// marshalling made first.
func (g *GCM) SealRecord(dst []byte, h *recordlayer.Header, payload []byte) ([]byte, error) {
	return g.aead.sealRecord(dst, h, payload)
}

func (a *aead) sealRecord(dst []byte, h *recordlayer.Header, payload []byte) ([]byte, error) {
	if h.SequenceNumber > recordlayer.MaxSequenceNumber || len(h.ConnectionID) > 0 {
		return nil, errFailedToCast
	}
	noncePtr := a.nonceBufferPool.Get().(*[]byte) // nolint:forcetypeassert
	defer a.nonceBufferPool.Put(noncePtr)
	nonce := *noncePtr
	copy(nonce, a.localWriteIV[:4])
	seq64 := (uint64(h.Epoch) << 48) | (h.SequenceNumber & 0x0000ffffffffffff)
	binary.BigEndian.PutUint64(nonce[4:], seq64)

	dst = append(dst, byte(h.ContentType), h.Version.Major, h.Version.Minor)
	dst = binary.BigEndian.AppendUint16(dst, h.Epoch)
	dst = append(dst, byte(h.SequenceNumber>>40), byte(h.SequenceNumber>>32), byte(h.SequenceNumber>>24),
		byte(h.SequenceNumber>>16), byte(h.SequenceNumber>>8), byte(h.SequenceNumber))
	dst = binary.BigEndian.AppendUint16(dst, uint16(8+len(payload)+a.tagLength)) //nolint:gosec // G115
	dst = append(dst, nonce[4:]...)
	additionalData := generateAEADAdditionalData(h, len(payload))

	return a.localAEAD.Seal(dst, nonce, payload, additionalData), nil
}
