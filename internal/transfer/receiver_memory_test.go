package transfer_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// liveHeapMax samples the live heap (as of the last collection) until
// stop is called, which returns the largest sample.
func liveHeapMax() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// The receiver's memory follows what it owns, not the transfer's size:
// the credit window (chunks the transport may hold for it), the write
// queue and the chunk at hand. The sender here is faster than the
// receiver (it hashes each chunk once and the pipe holds any number of
// messages), so the credit window is full all the time, and collections
// are frequent (the pipe copies each message), so the live heap is sampled
// often. The bound is generous: about 11 MiB are expected (8 MiB window,
// 2 MiB write queue, one chunk; 12-13 measured); with the 16 MiB window
// and eight 1 MiB write buffers of before, 25 MiB.
func TestReceiverLiveHeapBounded(t *testing.T) {
	ctx := testCtx(t)
	out := t.TempDir() // a real disk, with direct I/O where it has it
	const chunk = 1 << 20
	const size = 128 * chunk
	r := &transfer.Receiver{Dir: out}
	defer r.Close()
	sc, rc := transfer.Pipe(chunk+proto.ChunkHeaderLen, 1024)
	defer sc.Close()
	e := &evilSender{t: t, c: sc}

	runtime.GC()
	base := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(base)
	stop := liveHeapMax()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, rc) }()

	e.control(&proto.Manifest{Version: proto.Version, ChunkSize: chunk, TotalSize: size,
		Files: []proto.File{{Path: "big", Size: size}}})
	acc := e.accept()
	if got := acc.Window * chunk; got > 8<<20 {
		t.Errorf("credit window %d MiB, want at most 8", got>>20)
	}
	rh := proto.NewRootHasher(size, chunk)
	data := make([]byte, chunk)
	frame := make([]byte, 0, chunk+proto.ChunkHeaderLen)
	for i := range uint32(size / chunk) {
		for e.credit == 0 {
			e.recv()
		}
		binary.BigEndian.PutUint32(data, i) // every chunk differs
		h := proto.ChunkHash(data)
		rh.Add(&h)
		frame = append(proto.AppendChunkHeader(frame[:0], 0, 0, i, &h), data...)
		if err := sc.Send(frame); err != nil {
			t.Fatalf("receiver went away after %d chunks: %v", i, err)
		}
		e.credit--
	}
	e.control(&proto.EOF{File: 0, Root: rh.Hex()})
	e.control(&proto.Done{})
	for {
		b := e.recv()
		if b[0] != proto.FrameControl {
			continue
		}
		m, err := proto.ParseControl(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*proto.Complete); ok {
			break
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, transfer.ErrConnLost) {
		t.Fatalf("receiver: %v", err)
	}
	peak := stop()
	grew := int64(peak) - int64(base[0].Value.Uint64())
	t.Logf("live heap grew by at most %.1f MiB receiving %d MiB", float64(grew)/(1<<20), size>>20)
	if grew > 20<<20 {
		t.Errorf("live heap grew by %.1f MiB, want at most 20", float64(grew)/(1<<20))
	}
	fi, err := os.Stat(filepath.Join(out, "big"))
	if err != nil || fi.Size() != size {
		t.Fatalf("received file: %v, %v", fi, err)
	}
}

// rttConn is a Conn that reports a round-trip time.
type rttConn struct {
	transfer.Conn
	rtt time.Duration
}

func (c rttConn) RTT() time.Duration { return c.rtt }

// TestReceiverWindowFollowsRTT: a receiver that knows the round-trip time
// grants enough credit for the path (8 MiB up to 50 ms, more beyond, at
// most 24 MiB); one that does not grants 8 MiB.
func TestReceiverWindowFollowsRTT(t *testing.T) {
	const chunk = 1 << 20
	for _, tc := range []struct {
		rtt     time.Duration
		hasRTT  bool
		wantMiB int
	}{
		{0, false, 8},
		{0, true, 8},
		{30 * time.Millisecond, true, 8},
		{100 * time.Millisecond, true, 16}, // 160 MiB/s × 100 ms
		{150 * time.Millisecond, true, 24},
		{2 * time.Second, true, 24},
	} {
		ctx := testCtx(t)
		r := &transfer.Receiver{Dir: t.TempDir()}
		sc, rc := transfer.Pipe(chunk+proto.ChunkHeaderLen, 16)
		var c transfer.Conn = rc
		if tc.hasRTT {
			c = rttConn{Conn: rc, rtt: tc.rtt}
		}
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx, c) }()
		e := &evilSender{t: t, c: sc}
		e.control(&proto.Manifest{Version: proto.Version, ChunkSize: chunk, TotalSize: 4 * chunk,
			Files: []proto.File{{Path: "f", Size: 4 * chunk}}})
		if got := e.accept().Window * chunk >> 20; got != tc.wantMiB {
			t.Errorf("RTT %v (known %v): window %d MiB, want %d", tc.rtt, tc.hasRTT, got, tc.wantMiB)
		}
		sc.Close()
		if err := <-errc; err != nil && !errors.Is(err, transfer.ErrConnLost) {
			t.Errorf("receiver: %v", err)
		}
		r.Close()
	}
}
