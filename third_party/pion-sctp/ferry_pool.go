// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package sctp

import "sync"

// ferry patch: buffers of the DATA path come from size-classed pools.
// pion allocated a fresh buffer for each fragment's user data and three
// more while marshalling each packet; with large packets (up to 64 KiB
// between Go peers on one host) every one of them was a large allocation
// that the runtime zeroed, collected and returned to the OS, which cost
// more CPU than the protocol itself.

// bufClasses are the pooled capacities: small packets (pion's default
// 1191-byte MTU), medium ones, and the largest SCTP packet that fits in
// a UDP datagram with its DTLS record around it.
var bufClasses = [...]int{2048, 16384, 65536 + 512} //nolint:gochecknoglobals

var bufPools [len(bufClasses)]sync.Pool //nolint:gochecknoglobals

// getBuf returns a buffer of length n, pooled when a class fits.
func getBuf(n int) []byte {
	for i, c := range bufClasses {
		if n <= c {
			if p, ok := bufPools[i].Get().(*[]byte); ok {
				return (*p)[:n]
			}

			return make([]byte, n, c)
		}
	}

	return make([]byte, n)
}

// putBuf returns b to its pool. The caller must hold the only reference.
func putBuf(b []byte) {
	for i, c := range bufClasses {
		if cap(b) == c {
			b = b[:0]
			bufPools[i].Put(&b)

			return
		}
	}
}
