package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
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
// The receiver's live heap is bounded by what it owns (8 MiB of credit,
// at most 4 MiB queued for the disk, one message) plus the transport's
// buffers; everything else it allocates is garbage, and about 20 MB of its
// RSS are the binary's own pages. So it collects when the runtime's memory
// reaches receiveMemoryFloor, which keeps its peak RSS near 50 MB, or, once
// the live heap is so large that this would mean collecting all the time
// (a receiver that falls behind, whose transport then holds more; an SCTP
// association's out-of-order data on a lossy path), when it has grown by
// gcHeadroom: with a fixed 32 MiB limit it would collect continuously
// there (the runtime then caps the collector at half the CPU).
func tuneGC(cmd string) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if cmd == "receive" {
		collectAbove(receiveMemoryFloor)
		return
	}
	debug.SetGCPercent(300)
	debug.SetMemoryLimit(64 << 20)
}

const (
	receiveMemoryFloor = 32 << 20
	// runtimeOverhead approximates the runtime's memory besides the heap
	// (metadata, stacks) that the memory limit counts too.
	runtimeOverhead = 8 << 20
	// gcHeadroom is the least garbage allowed between collections: at
	// pion's ~2 bytes of garbage per byte received, 250 collections per GB
	// at worst, each a few milliseconds.
	gcHeadroom = 8 << 20
)

// gcTick is the object whose finalizer runs after each collection.
type gcTick struct{ _ [16]byte }

// collectAbove keeps the memory limit at the larger of floor and the live
// heap plus gcHeadroom (and the runtime's own memory), with GOGC off: a
// floor below which the heap grows freely, which Go's settings alone cannot
// say (with both GOGC and GOMEMLIMIT the smaller goal wins). The limit is
// updated after every collection, from a finalizer that re-arms itself
// until stop (for tests) is called.
func collectAbove(floor int64) (stop func()) {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(floor)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var mu sync.Mutex // stop waits for a finalizer that is setting the limit
	stopped := false
	var arm func()
	arm = func() {
		runtime.SetFinalizer(&gcTick{}, func(*gcTick) {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			metrics.Read(live)
			debug.SetMemoryLimit(max(floor, int64(live[0].Value.Uint64())+runtimeOverhead+gcHeadroom))
			arm()
		})
	}
	arm()
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}
