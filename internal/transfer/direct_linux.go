package transfer

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// ioAlign is the alignment direct I/O needs of offsets, lengths and memory
// (the logical block size is 512 or 4096 bytes).
const ioAlign = 4096

// File systems whose direct I/O is known to work for us (statfs f_type).
const (
	ext4Magic  = 0xEF53
	xfsMagic   = 0x58465342
	btrfsMagic = 0x9123683E
)

// openDirect opens a second descriptor of f for direct I/O (O_DIRECT),
// or returns nil where that is not known to work. It reopens f's own
// inode through /proc rather than its name, so a file swapped in under
// the name in between cannot receive the data.
func openDirect(f *os.File) *os.File {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var st syscall.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstatfs(int(fd), &st) }); err != nil || serr != nil {
		return nil
	}
	switch st.Type {
	case ext4Magic, xfsMagic, btrfsMagic:
	default:
		return nil
	}
	var d *os.File
	_ = rc.Control(func(fd uintptr) {
		d, err = os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_WRONLY|syscall.O_DIRECT, 0)
	})
	if err != nil {
		return nil
	}
	return d
}

// aligned reports whether b can be written at off with direct I/O.
func aligned(b []byte, off int64) bool {
	return len(b) > 0 && len(b)%ioAlign == 0 && off%ioAlign == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(b)))%ioAlign == 0
}

// alignedBuffer returns n bytes starting at an ioAlign boundary (Go's
// heap does not move objects, so the alignment holds).
func alignedBuffer(n int) []byte {
	b := make([]byte, n+ioAlign)
	skip := (ioAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%ioAlign)) % ioAlign
	return b[skip : skip+n : skip+n]
}

// allocate reserves disk space for n bytes at off without changing the
// file's size (FALLOC_FL_KEEP_SIZE).
func allocate(f *os.File, off, n int64) error {
	return syscall.Fallocate(int(f.Fd()), 1, off, n)
}
