package transfer_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// partNames are the receiver's names for a file's partial data and
// progress log (relative to the target folder).
func partNames(p string) (part, progress string) { return transfer.PartNames(p) }

// evilSender plays a sender that crafts its own frames.
type evilSender struct {
	t      *testing.T
	c      transfer.Conn
	credit uint32
	acked  uint32
}

func (e *evilSender) control(m proto.Control) {
	e.t.Helper()
	b, err := proto.MarshalControl(m)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.c.Send(b); err != nil {
		e.t.Fatal(err)
	}
}

// recv returns the next frame, counting credit from ACKs.
func (e *evilSender) recv() []byte {
	e.t.Helper()
	b, err := e.c.Recv()
	if err != nil {
		e.t.Fatalf("receiver went away: %v", err)
	}
	if len(b) > 0 && b[0] == proto.FrameAck {
		a, err := proto.ParseAck(b)
		if err != nil {
			e.t.Fatal(err)
		}
		e.credit += a.Credit
		e.acked += a.Credit
	}
	return b
}

func (e *evilSender) accept() *proto.Accept {
	e.t.Helper()
	m, err := proto.ParseControl(e.recv())
	if err != nil {
		e.t.Fatal(err)
	}
	acc, ok := m.(*proto.Accept)
	if !ok {
		e.t.Fatalf("got %s %+v, want accept", m.T(), m)
	}
	e.credit = uint32(acc.Window)
	return acc
}

// memTempDir is a temporary folder in memory where there is one: these
// tests write thousands of small files or scattered chunks, and each file
// is synced once complete, which on a busy disk takes most of the time.
func memTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "ferry-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A sender may offer a file of 2^32 chunks of 1 KiB (4 TiB) and send a few
// of them far apart: the receiver's memory must follow what arrived, not
// what was offered (it used to allocate 128 GiB at once and crash).
func TestHugeSparseOfferBounded(t *testing.T) {
	ctx := testCtx(t)
	out := memTempDir(t)
	const chunk = proto.MinChunkSize
	const size = (1<<32 - 2) * chunk // the most chunks a file may have
	const count = 20_000
	r := &transfer.Receiver{Dir: out, Window: 64}
	defer r.Close()
	sc, rc := transfer.Pipe(64<<10, 64)
	defer sc.Close()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, rc) }()
	e := &evilSender{t: t, c: sc}

	before := heapInuse()
	e.control(&proto.Manifest{Version: proto.Version, ChunkSize: chunk, TotalSize: size,
		Files: []proto.File{{Path: "huge", Size: size}}})
	e.accept()
	data := make([]byte, chunk)
	rand.Read(data)
	h := proto.ChunkHash(data)
	n := proto.ChunkCount(size, chunk)
	stride := n / count
	for i := range uint32(count) {
		for e.credit == 0 {
			e.recv()
		}
		ch := proto.Chunk{File: 0, Index: 1 + i*stride, Hash: h, Data: data}
		if err := sc.Send(ch.Marshal()); err != nil {
			t.Fatalf("receiver went away after %d chunks: %v", i, err)
		}
		e.credit--
	}
	// Credit comes back in batches: wait until all but the last batch is in.
	for e.acked < count-64 {
		e.recv()
	}
	grew := int64(heapInuse()) - int64(before)
	t.Logf("heap in use grew by %d KiB for %d sparse chunks of a %d GiB offer", grew>>10, count, size>>30)
	if grew > 8<<20 {
		t.Fatalf("heap in use grew by %d MiB", grew>>20)
	}
	e.control(&proto.Cancel{})
	if err := <-errc; !errors.Is(err, transfer.ErrCanceled) {
		t.Fatalf("receiver: %v", err)
	}
}

// Thousands of files with few file descriptors: files are opened when
// their data arrives and only a few at a time (every file used to be
// opened up front with three descriptors).
func TestManyFilesFewDescriptors(t *testing.T) {
	ctx := testCtx(t)
	const files = 7000
	src := fileTree(t, files, func(i int) []byte {
		b := make([]byte, 100+i%300)
		rand.Read(b)
		return b
	})
	out := memTempDir(t)
	s := &transfer.Sender{Files: src, MaxChunk: 64 << 10}
	defer s.Close()
	r := &transfer.Receiver{Dir: out}
	defer r.Close()

	// One descriptor per file and about 150 more: not three per file.
	restore := limitOpenFiles(t, files+150)
	sc, rc := transfer.Pipe(1<<20, 16) // room for the manifest
	serr, rerr := runPair(ctx, s, r, sc, rc)
	restore()
	if serr != nil || rerr != nil {
		t.Fatalf("sender %v, receiver %v", serr, rerr)
	}
	checkSame(t, src, out)
}

// A file that cannot be opened stops the transfer and leaves no partial
// files behind: neither its own nor other files' (every file used to be
// created up front and stayed there).
func TestOpenFailureLeavesNothing(t *testing.T) {
	ctx := testCtx(t)
	files := map[string]int{}
	for i := range 100 {
		files[fmt.Sprintf("f%03d", i)] = 2000
	}
	src := tree(t, t.TempDir(), files)
	out := t.TempDir()
	part, _ := partNames("f050")
	if err := os.Mkdir(filepath.Join(out, part), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &transfer.Sender{Files: src, MaxChunk: 1024}
	defer s.Close()
	r := &transfer.Receiver{Dir: out, Force: true}
	sc, rc := transfer.Pipe(64<<10, 16)
	serr, rerr := runPair(ctx, s, r, sc, rc)
	r.Close()
	if serr == nil || rerr == nil {
		t.Fatalf("sender %v, receiver %v; want a failure", serr, rerr)
	}
	var stray []string
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		name := filepath.Base(p)
		if p == out || name == part {
			return nil
		}
		if strings.Contains(name, "ferry") || name >= "f050" {
			stray = append(stray, name)
		}
		return nil
	})
	if len(stray) > 0 {
		t.Fatalf("left behind: %d files, e.g. %q", len(stray), stray[:min(4, len(stray))])
	}
}

// A file at the partial file's name that is not ours (no progress log of
// ours beside it) is never truncated without Force.
func TestForeignFileAtPartialNameKept(t *testing.T) {
	ctx := testCtx(t)
	src := tree(t, t.TempDir(), map[string]int{"x": 3000, "y": 3000})
	for i, which := range []string{"part", "progress"} {
		out := t.TempDir()
		part, progress := partNames(src[i].Path)
		foreign := map[string]string{"part": part, "progress": progress}[which]
		if err := os.WriteFile(filepath.Join(out, foreign), []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := &transfer.Sender{Files: src, MaxChunk: 1024}
		r := &transfer.Receiver{Dir: out}
		sc, rc := transfer.Pipe(64<<10, 16)
		serr, rerr := runPair(ctx, s, r, sc, rc)
		s.Close()
		r.Close()
		if !errors.Is(rerr, transfer.ErrExists) || !errors.Is(serr, transfer.ErrDeclined) {
			t.Fatalf("%s in the way: sender %v, receiver %v", which, serr, rerr)
		}
		if b, _ := os.ReadFile(filepath.Join(out, foreign)); string(b) != "keep me" {
			t.Fatalf("a file at the %s name was changed", which)
		}
		s = &transfer.Sender{Files: src, MaxChunk: 1024}
		r = &transfer.Receiver{Dir: out, Force: true}
		sc, rc = transfer.Pipe(64<<10, 16)
		serr, rerr = runPair(ctx, s, r, sc, rc)
		s.Close()
		r.Close()
		if serr != nil || rerr != nil {
			t.Fatalf("with force: sender %v, receiver %v", serr, rerr)
		}
		checkSame(t, src, out)
	}
}

// A manifest in which one entry is another's partial file is refused: both
// would be reported verified while only one exists.
func TestManifestEntryAtPartialNameRefused(t *testing.T) {
	ctx := testCtx(t)
	part, _ := partNames("a")
	src := tree(t, t.TempDir(), map[string]int{"a": 3000, part: 2000})
	out := t.TempDir()
	s := &transfer.Sender{Files: src, MaxChunk: 1024}
	defer s.Close()
	r := &transfer.Receiver{Dir: out}
	defer r.Close()
	sc, rc := transfer.Pipe(64<<10, 16)
	serr, rerr := runPair(ctx, s, r, sc, rc)
	if !errors.Is(rerr, transfer.ErrProtocol) || serr == nil {
		t.Fatalf("sender %v, receiver %v; want the manifest refused", serr, rerr)
	}
	if roots := r.Roots(); len(roots) != 0 || s.Complete() {
		t.Fatalf("%d files reported verified", len(roots))
	}
}

// Names of up to 255 bytes work, across a resume too (the partial file's
// name used to be the name plus a suffix, too long for the file system).
func TestLongNameResumes(t *testing.T) {
	ctx := testCtx(t)
	long := strings.Repeat("n", 251) + ".bin"
	const size = 256 << 10
	src := tree(t, t.TempDir(), map[string]int{long: size, "sub/" + long: 1000})
	out := t.TempDir()
	s := &transfer.Sender{Files: src, MaxChunk: 4096}
	defer s.Close()
	r1 := &transfer.Receiver{Dir: out, Window: 4}
	sc, rc := transfer.Pipe(64<<10, 4)
	cut := &failAfter{Conn: sc}
	cut.n.Store(size / 2 / 4096)
	serr, rerr := runPair(ctx, s, r1, cut, rc)
	r1.Close()
	if !errors.Is(serr, transfer.ErrConnLost) || !errors.Is(rerr, transfer.ErrConnLost) {
		t.Fatalf("first connection: sender %v, receiver %v", serr, rerr)
	}
	r2 := &transfer.Receiver{Dir: out}
	defer r2.Close()
	sc, rc = transfer.Pipe(64<<10, 4)
	if serr, rerr := runPair(ctx, s, r2, sc, rc); serr != nil || rerr != nil {
		t.Fatalf("second connection: sender %v, receiver %v", serr, rerr)
	}
	checkSame(t, src, out)
	if again := s.SentBytes() - (size + 1000); again > size/4 {
		t.Fatalf("resent %d bytes: the partial file was not found again", again)
	}
}

// Chunks spread over more files than may be open at once: files are closed
// and opened again (appending to their progress logs); after a reconnect
// every chunk is found in the logs, and every file verifies.
func TestInterleavedFilesReopened(t *testing.T) {
	ctx := testCtx(t)
	out := t.TempDir()
	const files, chunk = 40, proto.MinChunkSize
	man := &proto.Manifest{Version: proto.Version, ChunkSize: chunk}
	data := make([][2][]byte, files)
	for i := range files {
		man.Files = append(man.Files, proto.File{Path: fmt.Sprintf("d/f%02d", i), Size: 2 * chunk})
		man.TotalSize += 2 * chunk
		for k := range 2 {
			data[i][k] = make([]byte, chunk)
			rand.Read(data[i][k])
		}
	}
	start := func(r *transfer.Receiver) (*evilSender, chan error) {
		sc, rc := transfer.Pipe(64<<10, 64)
		t.Cleanup(func() { sc.Close() })
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx, rc) }()
		e := &evilSender{t: t, c: sc}
		e.control(man)
		return e, errc
	}

	// First connection: chunk 0 of every file, then chunk 1 of every file.
	r1 := &transfer.Receiver{Dir: out, Window: 64}
	e, errc := start(r1)
	e.accept()
	for k := range uint32(2) {
		for i := range files {
			for e.credit == 0 {
				e.recv()
			}
			ch := proto.Chunk{File: uint32(i), Index: k, Hash: proto.ChunkHash(data[i][k]), Data: data[i][k]}
			if err := e.c.Send(ch.Marshal()); err != nil {
				t.Fatal(err)
			}
			e.credit--
		}
	}
	for e.acked < 2*files-8 {
		e.recv()
	}
	e.c.Close()
	if err := <-errc; !errors.Is(err, transfer.ErrConnLost) {
		t.Fatalf("receiver: %v", err)
	}
	r1.Close()

	// Second connection: everything is there already.
	r2 := &transfer.Receiver{Dir: out}
	defer r2.Close()
	e, errc = start(r2)
	acc := e.accept()
	if len(acc.Resume) != files {
		t.Fatalf("resuming %d files, want %d", len(acc.Resume), files)
	}
	for _, rf := range acc.Resume {
		if len(rf.Have) != 1 || rf.Have[0] != (proto.Range{0, 2}) {
			t.Fatalf("file %d: have %v", rf.File, rf.Have)
		}
	}
	for i := range files {
		rh := proto.NewRootHasher(2*chunk, chunk)
		for k := range 2 {
			h := proto.ChunkHash(data[i][k])
			rh.Add(&h)
		}
		e.control(&proto.EOF{File: i, Root: rh.Hex()})
	}
	e.control(&proto.Done{})
	for {
		m, err := proto.ParseControl(e.recv())
		if err != nil {
			continue // ACKs
		}
		if _, ok := m.(*proto.Complete); ok {
			break
		}
		if _, ok := m.(*proto.Verified); !ok {
			t.Fatalf("got %s %+v", m.T(), m)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	for i := range files {
		b, err := os.ReadFile(filepath.Join(out, "d", fmt.Sprintf("f%02d", i)))
		if err != nil || string(b) != string(data[i][0])+string(data[i][1]) {
			t.Fatalf("file %d differs (%v)", i, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(out, "d")); len(ents) != files {
		t.Fatalf("%d entries in the folder, want %d", len(ents), files)
	}
}

// fileTree writes n files of content(i) in 50 folders and returns them as
// a sender's sources.
func fileTree(t *testing.T, n int, content func(i int) []byte) []transfer.SourceFile {
	t.Helper()
	dir := memTempDir(t)
	src := make([]transfer.SourceFile, 0, n)
	mtime := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := range n {
		p := fmt.Sprintf("d%02d/f%04d", i%50, i)
		local := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(local), 0o755)
		b := content(i)
		if err := os.WriteFile(local, b, 0o644); err != nil {
			t.Fatal(err)
		}
		src = append(src, transfer.SourceFile{Path: p, Local: local, Size: int64(len(b)), Mtime: mtime})
	}
	return src
}

// limitOpenFiles lowers this process's open-file limit to n and returns
// what restores it (also done when the test ends).
func limitOpenFiles(t *testing.T, n uint64) (restore func()) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	orig := lim
	lim.Cur = min(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}
