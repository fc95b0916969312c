// Package depottest is the conformance suite every depot.Blobs backend
// runs: the same black-box tests on local disk and on S3, so that the depot
// above them cannot tell which one it has.
package depottest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
)

// PartSize is depot.PartSize, short.
const PartSize = depot.PartSize

// TestBlobs runs the suite. newBlobs returns an empty store of its own for
// each subtest (a fresh folder, or a fresh prefix in a bucket) and cleans it
// up with t.Cleanup.
func TestBlobs(t *testing.T, newBlobs func(t *testing.T) depot.Blobs) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b depot.Blobs)
	}{
		{"UploadAndRead", testUploadAndRead},
		{"RewritePart", testRewritePart},
		{"OnePartObject", testOnePart},
		{"PartChecks", testPartChecks},
		{"FailedPartWrittenAgain", testFailedPart},
		{"Manifest", testManifest},
		{"DeleteComplete", testDeleteComplete},
		{"DeleteIncomplete", testDeleteIncomplete},
		{"List", testList},
		{"NotFound", testNotFound},
		{"BadIDs", testBadIDs},
		{"LargeObjectStreams", testLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newBlobs(t))
		})
	}
}

// ctx bounds every call of a test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// content returns size deterministic bytes named by seed.
func content(seed string, size int64) []byte {
	var s [32]byte
	copy(s[:], seed)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// upload writes parts and completes them, failing the test on any error.
func upload(t *testing.T, b depot.Blobs, id string, parts ...[]byte) {
	t.Helper()
	c := ctx(t)
	up, err := b.Begin(c, id)
	if err != nil {
		t.Fatalf("Begin(%s): %v", id, err)
	}
	for n, p := range parts {
		if err := b.WritePart(c, id, up, n, bytes.NewReader(p), int64(len(p))); err != nil {
			t.Fatalf("WritePart(%s, %d): %v", id, n, err)
		}
	}
	if err := b.Complete(c, id, up, len(parts)); err != nil {
		t.Fatalf("Complete(%s, %d): %v", id, len(parts), err)
	}
}

func read(t *testing.T, b depot.Blobs, id string, off, n int64) []byte {
	t.Helper()
	rc, err := b.Read(ctx(t), id, off, n)
	if err != nil {
		t.Fatalf("Read(%s, %d, %d): %v", id, off, n, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Read(%s, %d, %d): reading: %v", id, off, n, err)
	}
	return got
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func testUploadAndRead(t *testing.T, b depot.Blobs) {
	p0, p1, p2 := content("p0", PartSize), content("p1", PartSize), content("p2", 1000)
	upload(t, b, "obj", p0, p1, p2)
	all := slices.Concat(p0, p1, p2)
	total := int64(len(all))
	for _, r := range []struct {
		name   string
		off, n int64
	}{
		{"whole", 0, total},
		{"first byte", 0, 1},
		{"last byte", total - 1, 1},
		{"across the first part boundary", PartSize - 100, 200},
		{"across both boundaries", PartSize - 1, PartSize + 2},
		{"one whole part", PartSize, PartSize},
		{"the short last part", 2 * PartSize, 1000},
		{"from a record to the end", 3 * 65552, total - 3*65552},
		{"empty, at the end", total, 0},
		{"empty, inside", 5, 0},
	} {
		got := read(t, b, "obj", r.off, r.n)
		if !bytes.Equal(got, all[r.off:r.off+r.n]) {
			t.Errorf("read %s [%d, +%d): %d bytes, not the ones written", r.name, r.off, r.n, len(got))
		}
	}
	for _, r := range []struct {
		name   string
		off, n int64
	}{
		{"past the end", total - 1, 2},
		{"starting past the end", total + 1, 1},
		{"negative offset", -1, 2},
		{"negative length", 0, -1},
	} {
		rc, err := b.Read(ctx(t), "obj", r.off, r.n)
		if err == nil {
			rc.Close()
		}
		wantErr(t, "read "+r.name, err, depot.ErrRange)
	}
}

func testRewritePart(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	up, err := b.Begin(c, "re")
	if err != nil {
		t.Fatal(err)
	}
	write := func(n int, p []byte) {
		t.Helper()
		if err := b.WritePart(c, "re", up, n, bytes.NewReader(p), int64(len(p))); err != nil {
			t.Fatalf("WritePart(%d): %v", n, err)
		}
	}
	a, bb, cc, d, e := content("a", PartSize), content("b", 5000), content("c", 7000), content("d", PartSize), content("e", 6000)
	write(0, a)
	write(1, bb)
	write(1, cc) // the last part again, longer
	write(0, d)  // an earlier part again
	write(1, e)  // and the last a third time, within the same second
	if err := b.Complete(c, "re", up, 2); err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(d, e)
	if got := read(t, b, "re", 0, int64(len(want))); !bytes.Equal(got, want) {
		t.Error("after rewriting parts the object is not the last ones written")
	}
	rc, err := b.Read(c, "re", 0, int64(len(want))+1)
	if err == nil {
		rc.Close()
	}
	wantErr(t, "read one byte past the rewritten end", err, depot.ErrRange)
}

func testOnePart(t *testing.T, b depot.Blobs) {
	// The smallest data object: one empty record (§6.2), 16 bytes.
	p := content("tiny", 16)
	upload(t, b, "tiny", p)
	if got := read(t, b, "tiny", 0, 16); !bytes.Equal(got, p) {
		t.Error("16-byte object reads back wrong")
	}
	// Exactly one full part.
	q := content("full", PartSize)
	upload(t, b, "full", q)
	if got := read(t, b, "full", PartSize-1, 1); !bytes.Equal(got, q[PartSize-1:]) {
		t.Error("last byte of a one-part object reads back wrong")
	}
}

func testPartChecks(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	up, err := b.Begin(c, "chk")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		n    int
		size int64
	}{
		{"negative part", -1, 10},
		{"empty part", 0, 0},
		{"larger than PartSize", 0, PartSize + 1},
	} {
		err := b.WritePart(c, "chk", up, tc.n, strings.NewReader(strings.Repeat("x", int(max(tc.size, 0)))), tc.size)
		wantErr(t, "WritePart "+tc.name, err, depot.ErrPart)
	}
	// A short part is the last: a part after it is refused now or at Complete.
	short := content("short", 100)
	if err := b.WritePart(c, "chk", up, 0, bytes.NewReader(short), 100); err != nil {
		t.Fatal(err)
	}
	if err := b.WritePart(c, "chk", up, 1, bytes.NewReader(content("next", PartSize)), PartSize); err != nil {
		wantErr(t, "WritePart after a short part", err, depot.ErrPart)
	}
	wantErr(t, "Complete with a short part before the last", b.Complete(c, "chk", up, 2), depot.ErrPart)
	wantErr(t, "Complete of more parts than written", b.Complete(c, "chk", up, 3), depot.ErrPart)
	wantErr(t, "Complete of no parts", b.Complete(c, "chk", up, 0), depot.ErrPart)

	// A part out of order, on a fresh upload: refused now or at Complete.
	up2, err := b.Begin(c, "gap")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WritePart(c, "gap", up2, 1, bytes.NewReader(short), 100); err != nil {
		wantErr(t, "WritePart 1 before part 0", err, depot.ErrPart)
	}
	wantErr(t, "Complete without part 0", b.Complete(c, "gap", up2, 2), depot.ErrPart)
}

// failingReader gives n bytes of r and then an error, as a dropped upload.
type failingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	k, err := f.r.Read(p)
	f.n -= int64(k)
	return k, err
}

var errDropped = errors.New("depottest: connection dropped")

func testFailedPart(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	up, err := b.Begin(c, "fail")
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := content("f0", PartSize), content("f1", 3000)
	if err := b.WritePart(c, "fail", up, 0, bytes.NewReader(p0), PartSize); err != nil {
		t.Fatal(err)
	}
	// Part 1 breaks off half way, then arrives short: neither is durable.
	if err := b.WritePart(c, "fail", up, 1, &failingReader{bytes.NewReader(p1), 1500, errDropped}, 3000); err == nil {
		t.Error("WritePart with a reader that fails returned nil")
	}
	if err := b.WritePart(c, "fail", up, 1, bytes.NewReader(p1[:2999]), 3000); err == nil {
		t.Error("WritePart with a reader one byte short returned nil")
	}
	// ...and written again, it is.
	if err := b.WritePart(c, "fail", up, 1, bytes.NewReader(p1), 3000); err != nil {
		t.Fatal(err)
	}
	if err := b.Complete(c, "fail", up, 2); err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(p0, p1)
	if got := read(t, b, "fail", 0, int64(len(want))); !bytes.Equal(got, want) {
		t.Error("object after a failed part written again is wrong")
	}
}

func testManifest(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	_, err := b.Manifest(c, "man")
	wantErr(t, "Manifest before PutManifest", err, depot.ErrNotFound)
	m1 := content("m1", 1024+48)
	if err := b.PutManifest(c, "man", m1); err != nil {
		t.Fatal(err)
	}
	got, err := b.Manifest(c, "man")
	if err != nil || !bytes.Equal(got, m1) {
		t.Fatalf("Manifest = %d bytes, %v; want the %d put", len(got), err, len(m1))
	}
	m2 := content("m2", 3*1024+48)
	if err := b.PutManifest(c, "man", m2); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Manifest(c, "man"); err != nil || !bytes.Equal(got, m2) {
		t.Fatalf("Manifest after a second PutManifest = %d bytes, %v; want the second", len(got), err)
	}
	// Beside a data object, independent of it.
	upload(t, b, "man", content("data", 100))
	if got, err := b.Manifest(c, "man"); err != nil || !bytes.Equal(got, m2) {
		t.Fatalf("Manifest after the data was completed = %d bytes, %v", len(got), err)
	}
}

func listed(t *testing.T, b depot.Blobs) []string {
	t.Helper()
	var ids []string
	if err := b.List(ctx(t), func(id string) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func testDeleteComplete(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	upload(t, b, "del", content("d0", PartSize), content("d1", 10))
	if err := b.PutManifest(c, "del", content("m", 1072)); err != nil {
		t.Fatal(err)
	}
	upload(t, b, "keep", content("k", 10))
	if err := b.Delete(c, "del"); err != nil {
		t.Fatal(err)
	}
	_, err := b.Read(c, "del", 0, 1)
	wantErr(t, "Read after Delete", err, depot.ErrNotFound)
	_, err = b.Manifest(c, "del")
	wantErr(t, "Manifest after Delete", err, depot.ErrNotFound)
	if ids := listed(t, b); !slices.Equal(ids, []string{"keep"}) {
		t.Errorf("List after Delete = %q, want [keep]", ids)
	}
	if err := b.Delete(c, "del"); err != nil {
		t.Errorf("Delete of what is gone: %v", err)
	}
	if got := read(t, b, "keep", 0, 10); !bytes.Equal(got, content("k", 10)) {
		t.Error("Delete of one transfer changed another")
	}
}

func testDeleteIncomplete(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	up, err := b.Begin(c, "inc")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WritePart(c, "inc", up, 0, bytes.NewReader(content("i0", PartSize)), PartSize); err != nil {
		t.Fatal(err)
	}
	// A second upload of the same id that never got a part.
	if _, err := b.Begin(c, "inc"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(c, "inc"); err != nil {
		t.Fatal(err)
	}
	if ids := listed(t, b); len(ids) != 0 {
		t.Errorf("List after deleting an upload in progress = %q, want nothing", ids)
	}
	err = b.WritePart(c, "inc", up, 1, strings.NewReader("x"), 1)
	wantErr(t, "WritePart to a deleted upload", err, depot.ErrNotFound)
	wantErr(t, "Complete of a deleted upload", b.Complete(c, "inc", up, 1), depot.ErrNotFound)
	// The id can be used again.
	upload(t, b, "inc", content("again", 20))
	if got := read(t, b, "inc", 0, 20); !bytes.Equal(got, content("again", 20)) {
		t.Error("a new upload of a deleted id reads back wrong")
	}
}

func testList(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	if ids := listed(t, b); len(ids) != 0 {
		t.Fatalf("a new store lists %q", ids)
	}
	upload(t, b, "ready", content("r", 10))
	if _, err := b.Begin(c, "uploading"); err != nil {
		t.Fatal(err)
	}
	up, err := b.Begin(c, "with-a-part")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WritePart(c, "with-a-part", up, 0, strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	if err := b.PutManifest(c, "manifest_only", []byte("m")); err != nil {
		t.Fatal(err)
	}
	want := []string{"manifest_only", "ready", "uploading", "with-a-part"}
	if ids := listed(t, b); !slices.Equal(ids, want) {
		t.Errorf("List = %q, want %q", ids, want)
	}
	stop := errors.New("stop")
	calls := 0
	err = b.List(c, func(string) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with fn failing: %v after %d calls, want fn's error after 1", err, calls)
	}
}

func testNotFound(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	_, err := b.Read(c, "none", 0, 1)
	wantErr(t, "Read of an unknown id", err, depot.ErrNotFound)
	_, err = b.Manifest(c, "none")
	wantErr(t, "Manifest of an unknown id", err, depot.ErrNotFound)
	if err := b.Delete(c, "none"); err != nil {
		t.Errorf("Delete of an unknown id: %v", err)
	}
	// An upload that has not completed has no data object yet.
	up, err := b.Begin(c, "half")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WritePart(c, "half", up, 0, strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	_, err = b.Read(c, "half", 0, 1)
	wantErr(t, "Read before Complete", err, depot.ErrNotFound)
	// Upload handles that were never issued.
	wantErr(t, "WritePart with an unknown upload", b.WritePart(c, "half", "bm8tc3VjaC11cGxvYWQ", 0, strings.NewReader("abc"), 3), depot.ErrNotFound)
	wantErr(t, "Complete of an unknown upload", b.Complete(c, "half", "bm8tc3VjaC11cGxvYWQ", 1), depot.ErrNotFound)
	wantErr(t, "WritePart with another id's upload", b.WritePart(c, "other", up, 0, strings.NewReader("abc"), 3), depot.ErrNotFound)
}

// BadIDs are ids a backend must refuse (depot.ErrBadID) before it names
// anything with them: ways out of a folder or prefix, and what is not base64url.
var BadIDs = []string{
	"", ".", "..", "../x", "../../etc/passwd", "a/b", "a/../b", "/abs", `a\b`,
	"%2e%2e", "a b", "a\x00b", "ä", "a.b", "a=", strings.Repeat("A", 65),
}

func testBadIDs(t *testing.T, b depot.Blobs) {
	c := ctx(t)
	for _, id := range BadIDs {
		_, err := b.Begin(c, id)
		wantErr(t, fmt.Sprintf("Begin(%q)", id), err, depot.ErrBadID)
		err = b.WritePart(c, id, "bm8tc3VjaC11cGxvYWQ", 0, strings.NewReader("x"), 1)
		wantErr(t, fmt.Sprintf("WritePart(%q)", id), err, depot.ErrBadID)
		wantErr(t, fmt.Sprintf("Complete(%q)", id), b.Complete(c, id, "bm8tc3VjaC11cGxvYWQ", 1), depot.ErrBadID)
		wantErr(t, fmt.Sprintf("PutManifest(%q)", id), b.PutManifest(c, id, []byte("m")), depot.ErrBadID)
		_, err = b.Manifest(c, id)
		wantErr(t, fmt.Sprintf("Manifest(%q)", id), err, depot.ErrBadID)
		_, err = b.Read(c, id, 0, 1)
		wantErr(t, fmt.Sprintf("Read(%q)", id), err, depot.ErrBadID)
		wantErr(t, fmt.Sprintf("Delete(%q)", id), b.Delete(c, id), depot.ErrBadID)
	}
	if ids := listed(t, b); len(ids) != 0 {
		t.Errorf("after refused ids, List = %q", ids)
	}
	// The longest id that is allowed works.
	long := strings.Repeat("A", depot.MaxIDLen)
	upload(t, b, long, []byte("x"))
	if got := read(t, b, long, 0, 1); string(got) != "x" {
		t.Errorf("64-character id reads back %q", got)
	}
}

// heapWatch samples the live heap at points of a stream where a backend
// that held a whole part would hold most of one, and keeps the highest.
type heapWatch struct {
	mu   sync.Mutex
	base uint64
	peak uint64
}

func liveHeap() uint64 {
	runtime.GC() // a full collection: what is left is what is reachable
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func newHeapWatch() *heapWatch {
	b := liveHeap()
	return &heapWatch{base: b, peak: b}
}

func (h *heapWatch) sample() {
	l := liveHeap()
	h.mu.Lock()
	h.peak = max(h.peak, l)
	h.mu.Unlock()
}

func (h *heapWatch) grown() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak - h.base
}

// watched counts bytes through it, hashes them, and samples the heap when
// the stream is three quarters into each part.
type watched struct {
	r    io.Reader
	pos  int64
	next int64
	h    *heapWatch
	sum  interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newWatched(r io.Reader, h *heapWatch) *watched {
	return &watched{r: r, next: PartSize * 3 / 4, h: h, sum: sha256.New()}
}

func (w *watched) Read(p []byte) (int, error) {
	if w.pos == w.next {
		w.h.sample()
		w.next += PartSize
	}
	if int64(len(p)) > w.next-w.pos {
		p = p[:w.next-w.pos]
	}
	n, err := w.r.Read(p)
	w.sum.Write(p[:n])
	w.pos += int64(n)
	return n, err
}

// chachaReader is an endless deterministic stream.
type chachaReader struct{ c *rand.ChaCha8 }

func (c chachaReader) Read(p []byte) (int, error) { return c.c.Read(p) }

func testLarge(t *testing.T, b depot.Blobs) {
	const size = 8 * PartSize // 64 MiB and a little: 8 parts
	c := ctx(t)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], 64)
	h := newHeapWatch()
	in := newWatched(chachaReader{rand.NewChaCha8(seed)}, h)
	up, err := b.Begin(c, "large")
	if err != nil {
		t.Fatal(err)
	}
	for n := range size / PartSize {
		if err := b.WritePart(c, "large", up, n, io.LimitReader(in, PartSize), PartSize); err != nil {
			t.Fatalf("WritePart(%d): %v", n, err)
		}
	}
	if err := b.Complete(c, "large", up, size/PartSize); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Read(c, "large", 0, size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := newWatched(rc, h)
	if n, err := io.CopyBuffer(io.Discard, out, make([]byte, 32<<10)); err != nil || n != size {
		t.Fatalf("reading the object back: %d bytes, %v", n, err)
	}
	if !bytes.Equal(in.sum.Sum(nil), out.sum.Sum(nil)) {
		t.Error("the 64 MiB object read back differs from what was written (sha256)")
	}
	// A backend that held a part (8 MiB) would have grown the live heap by
	// at least 6 MiB at the samples; streaming needs buffers of some KiB.
	if g := h.grown(); g > PartSize/2 {
		t.Errorf("live heap grew by %d KiB while streaming 64 MiB: something holds parts in memory", g>>10)
	} else {
		t.Logf("live heap grew by at most %d KiB while streaming 64 MiB", g>>10)
	}
}
