package main

import (
	"os"
	"runtime/debug"
)

// tuneGC sets the garbage collector for a transfer process, unless GOGC or
// GOMEMLIMIT say otherwise. pion allocates a few buffers for every packet,
// so with Go's default (collect each time the heap doubles, ~20 MB here)
// the collector runs hundreds of times per GB. A peer's live heap is small
// and bounded (chunk buffers, the 8 MiB SCTP window), so let the heap grow
// 4x between collections, within a 64 MiB soft limit that keeps the peak
// RSS under 100 MB: about 25% more throughput on loopback (PERFORMANCE.md).
//
// The receiver keeps this too. Its live heap is only 15–25 MB (8 MiB of
// credit, the write queue, pion's buffers) and ~20 MB of its RSS are the
// binary's pages, so collecting at a 32 MiB floor (with 8 MiB of headroom
// above a larger live heap, so that it never collects continuously) kept
// its peak RSS near 50–60 MB, but pion leaves ~2 bytes of garbage per
// byte received: 250 collections per GB cost the receiver 1.8 CPU-s/GB
// and cut loopback throughput by more than half (issue 13, on a loaded
// machine: 160 -> 65 MB/s). Worth trying again on a transport that
// leaves less garbage.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(300)
	debug.SetMemoryLimit(64 << 20)
}
