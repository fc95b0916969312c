package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// The receiver's collector runs at a floor while the live heap is small
// and with a fixed headroom above it once it is large, following it both
// ways.
func TestCollectAboveFollowsLiveHeap(t *testing.T) {
	const floor = 32 << 20
	percent := debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)
	stop := collectAbove(floor)
	t.Cleanup(func() {
		stop()
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	// Finalizers run after a collection, on their own goroutine: collect
	// until the limit says what we expect, within a bound.
	waitLimit := func(ok func(int64) bool) int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC()
			l := debug.SetMemoryLimit(-1)
			if ok(l) {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("memory limit %d MiB", l>>20)
			}
			runtime.Gosched() // let the finalizer goroutine run
		}
	}
	big := make([]byte, 64<<20)
	got := waitLimit(func(l int64) bool { return l >= int64(len(big))+gcHeadroom })
	t.Logf("64 MiB live: limit %d MiB", got>>20)
	runtime.KeepAlive(big)
	got = waitLimit(func(l int64) bool { return l < 64<<20 })
	t.Logf("live heap dropped: limit %d MiB", got>>20)
	if got < floor || got == math.MaxInt64 {
		t.Fatalf("limit %d MiB, want at least the floor", got>>20)
	}
}
