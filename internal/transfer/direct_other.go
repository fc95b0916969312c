//go:build !linux

package transfer

import "os"

// Direct I/O is only used on Linux.
func openDirect(*os.File) *os.File { return nil }

func aligned([]byte, int64) bool { return false }

func alignedBuffer(n int) []byte { return make([]byte, n) }

// allocate does nothing where there is no fallocate.
func allocate(*os.File, int64, int64) error { return nil }
