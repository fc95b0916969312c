package transfer_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/transfer"
)

// A folder of thousands of files is sent with few file descriptors: the
// sender opens files as it reads them, a few at a time, and opens them
// again for chunks re-requested later (a NACK, or a resume on a new
// connection). It used to open every file up front and keep it open.
func TestSenderManyFilesFewDescriptors(t *testing.T) {
	ctx := testCtx(t)
	const files = 7000
	src := fileTree(t, files, func(i int) []byte {
		size := 100 + i%300
		if i%500 == 0 {
			size = 5000 // a few chunks
		}
		b := make([]byte, size)
		for k := range b {
			b[k] = byte(i*7 + k*13)
		}
		return b
	})
	out := memTempDir(t)
	// The first copy of a chunk of every 100th file is corrupted: the
	// receiver asks for it again while the sender has moved on to later
	// files.
	var mangled atomic.Int32
	s := &transfer.Sender{Files: src, MaxChunk: 1024, Mangle: func(file int, index uint32, data []byte) {
		if file%100 == 1 && index == 0 {
			data[0] ^= 0xff
			mangled.Add(1)
		}
	}}
	defer s.Close()

	// Fewer descriptors than files, by far.
	restore := limitOpenFiles(t, 256)

	// The first connection breaks half way; the second one resumes.
	r := &transfer.Receiver{Dir: out}
	defer r.Close()
	sc, rc := transfer.Pipe(1<<20, 16) // room for the manifest
	cut := &failAfter{Conn: sc}
	cut.n.Store(files / 2)
	serr, rerr := runPair(ctx, s, r, cut, rc)
	if !errors.Is(serr, transfer.ErrConnLost) || !errors.Is(rerr, transfer.ErrConnLost) {
		t.Fatalf("first connection: sender %v, receiver %v", serr, rerr)
	}
	sc, rc = transfer.Pipe(1<<20, 16)
	if serr, rerr := runPair(ctx, s, r, sc, rc); serr != nil || rerr != nil {
		t.Fatalf("second connection: sender %v, receiver %v", serr, rerr)
	}
	restore()
	checkSame(t, src, out)
	if mangled.Load() < files/100 {
		t.Fatalf("only %d chunks were corrupted", mangled.Load())
	}
}

// A source file that is removed, replaced or modified while the transfer
// runs stops it with a clear error on both sides, rather than sending a
// mix of old and new data (or nothing, for a file removed before it is
// opened). Each change is made when the first chunk goes out, before the
// sender reads the changed part (it reads at most a few dozen chunks
// ahead).
func TestSourceChangedMidTransfer(t *testing.T) {
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, want string
		change     func(t *testing.T, path string)
	}{
		{"removed", "was removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Error(err)
			}
		}},
		{"grown", "was modified", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.Write([]byte("more"))
			f.Close()
		}},
		{"replaced", "was replaced", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			b[0] ^= 1
			if err := os.WriteFile(path+".new", b, 0o644); err != nil {
				t.Error(err)
			}
			os.Chtimes(path+".new", old, old)
			if err := os.Rename(path+".new", path); err != nil {
				t.Error(err)
			}
		}},
		{"modified in place", "was modified", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.WriteAt([]byte("changed"), 200*1024) // far ahead of the reader
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			files := map[string]int{"big": 256 << 10}
			for i := range 60 {
				files[fmt.Sprintf("small%02d", i)] = 500
			}
			src := tree(t, t.TempDir(), files)
			for _, f := range src {
				// As files usually are: last written a while ago.
				os.Chtimes(f.Local, old, old)
			}
			victim := src[0].Local // "big": the first file read
			if tc.name != "modified in place" {
				victim = src[len(src)-1].Local // read last
			}
			var once atomic.Bool
			s := &transfer.Sender{Files: src, MaxChunk: 1024, Mangle: func(file int, index uint32, data []byte) {
				if once.CompareAndSwap(false, true) {
					tc.change(t, victim)
				}
			}}
			defer s.Close()
			r := &transfer.Receiver{Dir: t.TempDir()}
			defer r.Close()
			sc, rc := transfer.Pipe(64<<10, 16)
			var rerr error
			rdone := make(chan struct{})
			go func() {
				defer close(rdone)
				rerr = r.Run(ctx, rc)
				rc.Close()
			}()
			serr := s.Run(ctx, sc)
			// Keep reading until the receiver is through what was sent
			// (its error included), as a closing data channel does.
			for {
				if _, err := sc.Recv(); err != nil {
					break
				}
			}
			<-rdone
			if !errors.Is(serr, transfer.ErrFileChanged) || !strings.Contains(serr.Error(), tc.want) || !strings.Contains(serr.Error(), victim) {
				t.Fatalf("sender: %v; want %q about %s", serr, tc.want, victim)
			}
			if !errors.Is(rerr, transfer.ErrFileChanged) {
				t.Fatalf("receiver: %v; want a file-changed error", rerr)
			}
		})
	}
}
