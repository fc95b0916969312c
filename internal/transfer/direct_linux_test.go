package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ferrydev/ferry/internal/testenv"
)

// directFS reports whether dir's file system is one openDirect uses.
func directFS(t *testing.T, dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	switch st.Type {
	case ext4Magic, xfsMagic, btrfsMagic:
		return true
	}
	return false
}

func TestAligned(t *testing.T) {
	b := alignedBuffer(3 * ioAlign)
	for _, c := range []struct {
		b    []byte
		off  int64
		want bool
	}{
		{b, 0, true},
		{b[:ioAlign], ioAlign, true},
		{b[1 : ioAlign+1], 0, false}, // memory
		{b[:ioAlign], 512, false},    // offset
		{b[:100], 0, false},          // length
		{b[:0], 0, false},
	} {
		if got := aligned(c.b, c.off); got != c.want {
			t.Errorf("aligned(len %d, off %d) = %v", len(c.b), c.off, got)
		}
	}
}

// TestProgressLogFitsOnFullDisk: a progress log has room reserved ahead of
// its end, so the records of chunks already written still fit once chunk
// data has filled the disk, and a resume keeps them.
func TestProgressLogFitsOnFullDisk(t *testing.T) {
	dir := testenv.Tmpfs(t, "1m")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	l, err := createProgressLog(root, "p", logHeader(1<<30, 1<<20, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	f, err := os.Create(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	recs := make([]logRecord, 1000) // 40 KB of records, more than one sync interval brings
	for i := range recs {
		recs[i].index = uint32(i)
	}
	if err := l.append(recs); err != nil {
		t.Fatalf("appending to a progress log on a full disk: %v", err)
	}
}
