package main

import (
	"os"
	"runtime/debug"
)

// tuneGC sets the garbage collector for a transfer process (cmd is "send"
// or "receive"), unless GOGC or GOMEMLIMIT say otherwise. pion allocates a
// few buffers for every packet, so with Go's default (collect each time
// the heap doubles) the collector runs hundreds of times per GB.
//
// The sender lets the heap grow 4x between collections within a 64 MiB
// soft limit: about 25% more throughput on loopback (PERFORMANCE.md), and
// its live heap (read-ahead chunks, the SCTP send queue) is large enough
// that a lower limit makes it collect continuously.
//
// The receiver's live heap is bounded by what it owns (the credit window,
// the write queue, one message) plus the transport's buffers, 15–25 MB in
// all; the rest of a collected heap is garbage. So it collects only when
// the runtime's memory reaches a 32 MiB soft limit (GOGC off): the fewest
// collections that keep its peak RSS, with ~20 MB of the binary's own
// pages, under 50 MB. Were the live heap ever to reach the limit (a
// manifest of a huge folder), the runtime caps the collector at half the
// CPU and the heap grows past the limit: slower, never out of memory.
func tuneGC(cmd string) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if cmd == "receive" {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(32 << 20)
		return
	}
	debug.SetGCPercent(300)
	debug.SetMemoryLimit(64 << 20)
}
