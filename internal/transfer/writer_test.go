package transfer

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ferrydev/ferry/internal/proto"
)

const testChunk = 1 << 20

// Chunks are written where they belong, aligned ones with direct I/O where
// the file system takes it, and reach the flusher only once written.
func TestDiskWriterWrites(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "x.part"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rf := &rfile{f: f, direct: openDirect(f), part: "x.part"}
	defer rf.closeDirect()
	fl := &flusher{pending: map[*rfile][]logRecord{}, kick: make(chan struct{}, 1)}
	w := newDiskWriter(fl, testChunk)
	defer w.close()

	want := make([]byte, 3*testChunk+17)
	rand.Read(want)
	// Out of order, the short last chunk among them.
	for _, i := range []uint32{2, 0, 3, 1} {
		end := min(int(i+1)*testChunk, len(want))
		w.write(rf, i, [proto.HashLen]byte{byte(i)}, want[int(i)*testChunk:end])
	}
	failed, err := w.wait()
	if err != nil || len(failed) != 0 {
		t.Fatalf("wait: %v, failed %v", err, failed)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file content differs")
	}
	if n := len(fl.pending[rf]); n != 4 {
		t.Fatalf("%d records for the flusher, want 4", n)
	}
	if fl.bytes != len(want) {
		t.Fatalf("flusher counts %d bytes, want %d", fl.bytes, len(want))
	}
	// The three full chunks are aligned: direct I/O wherever it is known
	// to work; the short one goes through the page cache.
	wantDirect := 0
	if directFS(t, dir) {
		wantDirect = 3
	}
	if rf.directWrites != wantDirect {
		t.Fatalf("%d direct writes, want %d", rf.directWrites, wantDirect)
	}
}

// A chunk that cannot be written is reported with its error, never
// recorded, and every later one is refused too.
func TestDiskWriterFailure(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ro.part")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p) // read-only: writes fail
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rf := &rfile{f: f, part: "ro.part"}
	fl := &flusher{pending: map[*rfile][]logRecord{}, kick: make(chan struct{}, 1)}
	w := newDiskWriter(fl, testChunk)
	defer w.close()
	data := make([]byte, 4096)
	w.write(rf, 0, [proto.HashLen]byte{}, data)
	w.write(rf, 1, [proto.HashLen]byte{}, data[:100])
	failed, err := w.wait()
	if !errors.Is(err, syscall.EBADF) {
		t.Fatalf("error %v, want EBADF", err)
	}
	if len(failed) != 2 || failed[0].index != 0 || failed[1].n != 100 {
		t.Fatalf("failed chunks %+v", failed)
	}
	if len(fl.pending) != 0 {
		t.Fatal("a chunk that was not written reached the flusher")
	}
	if w.failure() == nil {
		t.Fatal("the failure is not kept")
	}

	// The receiver forgets the chunks again.
	r := &Receiver{writer: w, done: 4196}
	rf.have = &rangeSet{n: 2}
	rf.have.set(0)
	rf.have.set(1)
	w.write(rf, 0, [proto.HashLen]byte{}, data)
	w.write(rf, 1, [proto.HashLen]byte{}, data[:100])
	if err := r.settleWrites(); err == nil {
		t.Fatal("settleWrites: no error")
	}
	if rf.have.count() != 0 || r.done != 0 {
		t.Fatalf("after failed writes: %d chunks marked, %d bytes done", rf.have.c, r.done)
	}
}
