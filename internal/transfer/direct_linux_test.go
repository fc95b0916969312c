package transfer

import (
	"syscall"
	"testing"
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
