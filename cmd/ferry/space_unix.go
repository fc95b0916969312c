//go:build linux || darwin || freebsd

package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// freeSpace returns the bytes an unprivileged user may still write on the
// file system that holds dir (or would hold it: its nearest existing
// parent).
func freeSpace(dir string) (int64, bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, false
	}
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return int64(uint64(st.Bavail) * uint64(st.Bsize)), true
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, fs.ErrNotExist) || parent == dir {
			return 0, false
		}
		dir = parent
	}
}

// allocated returns the bytes a file takes on disk (0 if there is none):
// partial files are sparse where chunks are missing.
func allocated(path string) int64 {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return min(fi.Size(), int64(st.Blocks)*512)
	}
	return fi.Size()
}
