package transfer_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// A sender that says done before its last chunks and then goes silent,
// keeping the connection open, must not keep the receiver forever: it ends
// with ErrIdle, keeps what it verified, and a later run continues from it.
func TestReceiverIdleSenderSaysDoneEarly(t *testing.T) {
	ctx := testCtx(t)
	const chunk = 16 << 10
	const chunks = 8
	src := tree(t, t.TempDir(), map[string]int{"f": chunks * chunk})
	data, err := os.ReadFile(src[0].Local)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()

	sc, rc := transfer.Pipe(64<<10, 64)
	silent := make(chan struct{})
	go func() { // the malicious sender
		defer close(silent)
		man := &proto.Manifest{Version: proto.Version, ChunkSize: chunk, TotalSize: int64(len(data)),
			Files: []proto.File{{Path: "f", Size: int64(len(data)), Mtime: src[0].Mtime.UnixMilli()}}}
		b, _ := proto.MarshalControl(man)
		if sc.Send(b) != nil {
			return
		}
		if _, err := sc.Recv(); err != nil { // accept
			return
		}
		for i := range chunks / 2 {
			c := proto.Chunk{Index: uint32(i), Data: data[i*chunk : (i+1)*chunk]}
			c.Hash = proto.ChunkHash(c.Data)
			if sc.Send(c.Marshal()) != nil {
				return
			}
		}
		b, _ = proto.MarshalControl(&proto.Done{})
		if sc.Send(b) != nil {
			return
		}
		// Silent, but the connection stays open: read until it is closed.
		for {
			if _, err := sc.Recv(); err != nil {
				return
			}
		}
	}()
	r1 := &transfer.Receiver{Dir: out, Idle: 300 * time.Millisecond}
	start := time.Now()
	rerr := make(chan error, 1)
	go func() { rerr <- r1.Run(ctx, rc) }()
	select {
	case err := <-rerr:
		if !errors.Is(err, transfer.ErrIdle) || errors.Is(err, transfer.ErrConnLost) {
			t.Fatalf("receiver: %v, want ErrIdle (and not a lost connection, which would be retried)", err)
		}
		t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(20 * time.Second):
		rc.Close()
		t.Fatal("the receiver still waits for a silent sender after 20 s")
	}
	select {
	case <-silent:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver did not close the connection to the silent sender")
	}
	r1.Close()

	// A rerun with an honest sender continues from the verified half.
	s := &transfer.Sender{Files: src, MaxChunk: chunk}
	defer s.Close()
	var resumed int64
	r2 := &transfer.Receiver{Dir: out, Progress: func(p transfer.Progress) { resumed = p.Resumed }}
	defer r2.Close()
	sc, rc = transfer.Pipe(64<<10, 64)
	if serr, rerr := runPair(ctx, s, r2, sc, rc); serr != nil || rerr != nil {
		t.Fatalf("rerun: sender %v, receiver %v", serr, rerr)
	}
	checkSame(t, src, out)
	if resumed != chunks/2*chunk || s.SentBytes() != chunks/2*chunk {
		t.Fatalf("rerun resumed %d bytes and sent %d, want %d each", resumed, s.SentBytes(), chunks/2*chunk)
	}
}
