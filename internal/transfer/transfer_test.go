package transfer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// tree writes files (relative path -> size) of random bytes under dir and
// returns the matching SourceFiles.
func tree(t *testing.T, dir string, files map[string]int) []transfer.SourceFile {
	t.Helper()
	var out []transfer.SourceFile
	mtime := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, p := range sortedKeys(files) {
		local := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, files[p])
		rand.Read(b)
		if err := os.WriteFile(local, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, transfer.SourceFile{Path: p, Local: local, Size: int64(len(b)), Mtime: mtime})
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func checkSame(t *testing.T, src []transfer.SourceFile, dir string) {
	t.Helper()
	for _, f := range src {
		got := filepath.Join(dir, filepath.FromSlash(f.Path))
		if sum(t, f.Local) != sum(t, got) {
			t.Fatalf("%s differs", f.Path)
		}
		fi, _ := os.Stat(got)
		if !fi.ModTime().Equal(f.Mtime) {
			t.Errorf("%s mtime %v, want %v", f.Path, fi.ModTime(), f.Mtime)
		}
		part, progress := transfer.PartNames(f.Path)
		for _, extra := range []string{part, progress} {
			if _, err := os.Stat(filepath.Join(dir, extra)); err == nil {
				t.Errorf("%s left behind", extra)
			}
		}
	}
}

// runPair runs sender and receiver over conns until both return.
func runPair(ctx context.Context, s *transfer.Sender, r *transfer.Receiver, sc, rc transfer.Conn) (serr, rerr error) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rerr = r.Run(ctx, rc)
		if rerr != nil {
			rc.Close()
		}
	}()
	serr = s.Run(ctx, sc)
	if serr != nil {
		sc.Close()
	}
	wg.Wait()
	return serr, rerr
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{
		"a.bin": 1 << 20, "empty": 0, "dir/sub/b.txt": 5000, "dir/c": 1024, "one": 1,
	})
	out := t.TempDir()
	var progress []transfer.Progress
	s := &transfer.Sender{Files: src, MaxChunk: 1024 * 3}
	r := &transfer.Receiver{Dir: out, Progress: func(p transfer.Progress) { progress = append(progress, p) }}
	defer r.Close()
	defer s.Close()
	sc, rc := transfer.Pipe(64<<10, 16)
	serr, rerr := runPair(ctx, s, r, sc, rc)
	if serr != nil || rerr != nil {
		t.Fatalf("sender %v, receiver %v", serr, rerr)
	}
	if !s.Complete() || !r.Complete() {
		t.Fatal("not complete")
	}
	checkSame(t, src, out)
	last := progress[len(progress)-1]
	if last.Done != last.Total || last.FilesDone != len(src) {
		t.Fatalf("final progress %+v", last)
	}
	if s.SentBytes() != last.Total {
		t.Fatalf("sent %d bytes for %d", s.SentBytes(), last.Total)
	}
}

func TestCorruptChunkRefetched(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{"f": 100_000})
	out := t.TempDir()
	var mangled atomic.Int32
	s := &transfer.Sender{Files: src, MaxChunk: 4096, Mangle: func(file int, index uint32, data []byte) {
		if index == 7 || index == 3 {
			data[10] ^= 0xff
			mangled.Add(1)
		}
	}}
	r := &transfer.Receiver{Dir: out}
	defer r.Close()
	defer s.Close()
	sc, rc := transfer.Pipe(64<<10, 4)
	serr, rerr := runPair(ctx, s, r, sc, rc)
	if serr != nil || rerr != nil {
		t.Fatalf("sender %v, receiver %v", serr, rerr)
	}
	checkSame(t, src, out)
	if mangled.Load() != 2 || s.SentBytes() != 100_000+2*4096 {
		t.Fatalf("mangled %d, sent %d", mangled.Load(), s.SentBytes())
	}
}

// failAfter breaks the connection after n chunk frames have been sent.
type failAfter struct {
	transfer.Conn
	n    atomic.Int64
	once sync.Once
}

func (f *failAfter) Send(b []byte) error {
	if len(b) > 0 && b[0] == proto.FrameChunk && f.n.Add(-1) < 0 {
		f.once.Do(func() { f.Conn.Close() })
		return errors.New("link cut")
	}
	return f.Conn.Send(b)
}

func TestResumeAfterReceiverRestart(t *testing.T) {
	ctx := testCtx(t)
	const size = 3 << 20
	src := tree(t, t.TempDir(), map[string]int{"big": size, "small": 10})
	out := t.TempDir()
	s := &transfer.Sender{Files: src, MaxChunk: 16 << 10}
	defer s.Close()

	// First connection breaks about half way through.
	r1 := &transfer.Receiver{Dir: out, Window: 8}
	sc, rc := transfer.Pipe(64<<10, 4)
	cut := &failAfter{Conn: sc}
	cut.n.Store(size / 2 / (16 << 10))
	serr, rerr := runPair(ctx, s, r1, cut, rc)
	if !errors.Is(serr, transfer.ErrConnLost) || !errors.Is(rerr, transfer.ErrConnLost) {
		t.Fatalf("first connection: sender %v, receiver %v", serr, rerr)
	}
	// The receiver process "dies": only what it made durable survives.
	r1.Close()
	if _, progress := transfer.PartNames("big"); !exists(filepath.Join(out, progress)) {
		t.Fatal("no progress log")
	}
	firstSent := s.SentBytes()

	r2 := &transfer.Receiver{Dir: out}
	defer r2.Close()
	sc, rc = transfer.Pipe(64<<10, 4)
	if serr, rerr := runPair(ctx, s, r2, sc, rc); serr != nil || rerr != nil {
		t.Fatalf("second connection: sender %v, receiver %v", serr, rerr)
	}
	checkSame(t, src, out)
	again := s.SentBytes() - (size + 10)
	t.Logf("first connection sent %d, extra bytes in total %d", firstSent, again)
	if again > firstSent/2 {
		t.Fatalf("resent %d bytes of %d already sent", again, firstSent)
	}
}

func TestResumeWithCorruptProgressRejected(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{"f": 64 << 10})
	out := t.TempDir()
	s := &transfer.Sender{Files: src, MaxChunk: 4096}
	defer s.Close()
	r1 := &transfer.Receiver{Dir: out, Window: 2}
	sc, rc := transfer.Pipe(64<<10, 2)
	cut := &failAfter{Conn: sc}
	cut.n.Store(8)
	runPair(ctx, s, r1, cut, rc)
	r1.Close()
	// Make the progress log lie about chunk 0's hash, with a valid CRC:
	// only the root check can notice.
	partName, logName := transfer.PartNames("f")
	part, logPath := filepath.Join(out, partName), filepath.Join(out, logName)
	lb, _ := os.ReadFile(logPath)
	if len(lb) < 32+40 {
		t.Fatalf("progress log has %d bytes", len(lb))
	}
	rec := lb[32 : 32+40]
	rec[4] ^= 1
	binary.BigEndian.PutUint32(rec[36:], crc32.ChecksumIEEE(rec[:36]))
	if err := os.WriteFile(logPath, lb, 0o600); err != nil {
		t.Fatal(err)
	}
	// A fresh sender must hash the skipped chunks from its own disk.
	s2 := &transfer.Sender{Files: src, MaxChunk: 4096}
	defer s2.Close()

	r2 := &transfer.Receiver{Dir: out}
	defer r2.Close()
	sc, rc = transfer.Pipe(64<<10, 4)
	serr, rerr := runPair(ctx, s2, r2, sc, rc)
	if !errors.Is(rerr, transfer.ErrRootMismatch) || !errors.Is(serr, transfer.ErrRootMismatch) {
		t.Fatalf("sender %v, receiver %v; want root mismatch", serr, rerr)
	}
	// Names in errors are quoted, like everywhere else in the receiver.
	if !strings.Contains(rerr.Error(), `: "f" (root `) {
		t.Fatalf("receiver error %q does not quote the name", rerr)
	}
	if _, err := os.Stat(part); err == nil {
		t.Fatal("partial file kept after a root mismatch")
	}
	if _, err := os.Stat(filepath.Join(out, "f")); err == nil {
		t.Fatal("unverified file moved into place")
	}
}

func TestExistingFilesNeedForce(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{"x": 100})
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "x"), []byte("keep me"), 0o644)
	s := &transfer.Sender{Files: src}
	r := &transfer.Receiver{Dir: out}
	sc, rc := transfer.Pipe(64<<10, 4)
	serr, rerr := runPair(ctx, s, r, sc, rc)
	s.Close()
	r.Close()
	if !errors.Is(rerr, transfer.ErrExists) || !errors.Is(serr, transfer.ErrDeclined) {
		t.Fatalf("sender %v, receiver %v", serr, rerr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "x")); string(b) != "keep me" {
		t.Fatal("existing file touched")
	}
	s = &transfer.Sender{Files: src}
	r = &transfer.Receiver{Dir: out, Force: true}
	defer s.Close()
	defer r.Close()
	sc, rc = transfer.Pipe(64<<10, 4)
	if serr, rerr := runPair(ctx, s, r, sc, rc); serr != nil || rerr != nil {
		t.Fatalf("with force: %v %v", serr, rerr)
	}
	checkSame(t, src, out)
}

func TestSymlinkInTargetRefused(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{"d/x": 100})
	out := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(out, "d")); err != nil {
		t.Fatal(err)
	}
	s := &transfer.Sender{Files: src}
	r := &transfer.Receiver{Dir: out}
	defer s.Close()
	defer r.Close()
	sc, rc := transfer.Pipe(64<<10, 4)
	_, rerr := runPair(ctx, s, r, sc, rc)
	if !errors.Is(rerr, transfer.ErrUnsafePath) {
		t.Fatalf("receiver %v", rerr)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Fatal("wrote through the symlink")
	}
}

func TestDeclineAndCancel(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{"x": 100})
	s := &transfer.Sender{Files: src}
	r := &transfer.Receiver{Dir: t.TempDir(), Confirm: func(m *proto.Manifest) error {
		if m.TotalSize != 100 || m.Files[0].Path != "x" {
			t.Errorf("manifest %+v", m)
		}
		return errors.New("user said no")
	}}
	defer s.Close()
	defer r.Close()
	sc, rc := transfer.Pipe(64<<10, 4)
	serr, _ := runPair(ctx, s, r, sc, rc)
	if !errors.Is(serr, transfer.ErrDeclined) {
		t.Fatalf("sender %v", serr)
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"CON", "con.txt", "a/NUL.tar.gz", "LPT1", "../x", "/abs", "a/../b", `a\b`} {
		if transfer.CheckPath(p) == nil {
			t.Errorf("%q accepted", p)
		}
	}
	for _, p := range []string{"console.log", "a/b/c.txt", "CONTRACT.pdf", "nul-ish"} {
		if err := transfer.CheckPath(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
}

// TestResendAfterDone corrupts the last chunk: its NACK reaches the sender
// after it sent eof and done, so the good copy arrives after done (§4.5).
func TestResendAfterDone(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{"a": 10_000, "b": 9_000})
	out := t.TempDir()
	s := &transfer.Sender{Files: src, MaxChunk: 1024, Mangle: func(file int, index uint32, data []byte) {
		if file == 1 && index == 8 { // the very last chunk of the transfer
			data[0] ^= 1
		}
	}}
	r := &transfer.Receiver{Dir: out}
	defer s.Close()
	defer r.Close()
	sc, rc := transfer.Pipe(64<<10, 64)
	if serr, rerr := runPair(ctx, s, r, sc, rc); serr != nil || rerr != nil {
		t.Fatalf("sender %v, receiver %v", serr, rerr)
	}
	checkSame(t, src, out)
	if s.SentBytes() != 19_000+(9_000-8*1024) {
		t.Fatalf("sent %d bytes: the last chunk was not re-sent exactly once", s.SentBytes())
	}
}
