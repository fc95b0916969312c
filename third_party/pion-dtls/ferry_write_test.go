// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package dtls

import (
	"bytes"
	"math/rand"
	"testing"
)

// Records written through the sealing fast path arrive intact, read with
// Read and with ReadPacket (ferry patches), up to the largest size.
func TestFerryWriteFastPathAndReadPacket(t *testing.T) {
	client, server, err := pipeMemory() // upstream's helper (conn_test.go)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() //nolint:errcheck
	defer server.Close() //nolint:errcheck

	rng := rand.New(rand.NewSource(1)) //nolint:gosec
	// Up to the largest record the fast path seals.
	largest := maxSealedPayload
	sizes := []int{1, 100, 1191, largest / 2, largest}
	errs := make(chan error, 1)
	var sent [][]byte
	for i := range 60 {
		b := make([]byte, sizes[i%len(sizes)])
		rng.Read(b)
		sent = append(sent, b)
	}
	go func() {
		for _, b := range sent {
			if _, err := client.Write(b); err != nil {
				errs <- err

				return
			}
		}
		errs <- nil
	}()
	buf := make([]byte, inboundBufferSize)
	for i, want := range sent {
		var got []byte
		if i%2 == 0 {
			got, err = server.ReadPacket()
		} else {
			var n int
			n, err = server.Read(buf)
			got = buf[:n]
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d (%d bytes) differs", i, len(want))
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	// A ReadPacket result is the caller's: the next record must not
	// overwrite it.
	first := []byte("first record")
	if _, err := client.Write(first); err != nil {
		t.Fatal(err)
	}
	got, err := server.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write(bytes.Repeat([]byte{'x'}, len(first))); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, first) {
		t.Fatalf("a packet returned by ReadPacket changed to %q", got)
	}
}
