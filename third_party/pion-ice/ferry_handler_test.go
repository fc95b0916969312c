// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package ice

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Packets queued before SetPacketHandler reach the handler first, in
// order, then new ones follow, and the byte count covers both (ferry patch).
func TestFerryPacketHandler(t *testing.T) {
	aConn, bConn := pipe(t, nil) // upstream's helper (transport_test.go)
	// Queued for Read: the handler is not set yet.
	const early, late = 5, 20
	for i := range early {
		if _, err := aConn.Write([]byte(fmt.Sprintf("packet %02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until they are queued: Read would take them, Count does not.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for bConn.agent.buf.Count() < early {
		select {
		case <-ctx.Done():
			t.Fatalf("only %d packets queued", bConn.agent.buf.Count())
		case <-time.After(time.Millisecond):
		}
	}
	var mu sync.Mutex
	var got []string
	all := make(chan struct{})
	bConn.SetPacketHandler(func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(b))
		if len(got) == early+late {
			close(all)
		}
	})
	for i := early; i < early+late; i++ {
		if _, err := aConn.Write([]byte(fmt.Sprintf("packet %02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("handler got %d of %d packets", len(got), early+late)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range got[:early] {
		if want := fmt.Sprintf("packet %02d", i); s != want {
			t.Fatalf("queued packet %d is %q, want %q", i, s, want)
		}
	}
	if n := bConn.BytesReceived(); n != uint64((early+late)*len("packet 00")) {
		t.Fatalf("BytesReceived %d", n)
	}
}
