// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ciphersuite

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// SealRecord (ferry patch) writes what marshalling a record and Encrypt
// wrote, and the peer opens it.
func TestFerrySealRecordMatchesEncrypt(t *testing.T) {
	rng := rand.New(rand.NewSource(1)) //nolint:gosec
	key, iv := make([]byte, 16), make([]byte, 4)
	rng.Read(key)
	rng.Read(iv)
	local, err := NewGCM(key, iv, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 17, 1191, 8000, 65000} {
		payload := make([]byte, n)
		rng.Read(payload)
		h := recordlayer.Header{
			ContentType: protocol.ContentTypeApplicationData, Version: protocol.Version1_2,
			Epoch: 1, SequenceNumber: rng.Uint64() & recordlayer.MaxSequenceNumber,
		}
		rec := &recordlayer.RecordLayer{Header: h, Content: &protocol.ApplicationData{Data: payload}}
		raw, err := rec.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, err := local.Encrypt(rec, raw)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, 3, 3+len(want)) // appends after what dst holds
		got, err := local.SealRecord(dst, &h, payload)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[3:], want) {
			t.Fatalf("%d bytes: SealRecord differs from Encrypt", n)
		}
		opened, err := local.Decrypt(recordlayer.Header{}, got[3:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(opened[recordlayer.FixedHeaderSize:], payload) {
			t.Fatalf("%d bytes: opened payload differs", n)
		}
	}
	h := recordlayer.Header{SequenceNumber: recordlayer.MaxSequenceNumber + 1}
	if _, err := local.SealRecord(nil, &h, nil); err == nil {
		t.Fatal("sequence number overflow accepted")
	}
}
