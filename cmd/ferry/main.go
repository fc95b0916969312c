// Command ferry sends files peer to peer: `ferry serve` runs the web page,
// signaling and TURN relay; `ferry send` and `ferry receive` are the native
// peer.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := profile(os.Getenv("FERRY_CPUPROFILE"))
	stopTrace := traceTo(os.Getenv("FERRY_TRACE"))
	memProfile := os.Getenv("FERRY_MEMPROFILE")
	if len(os.Args) > 1 && (os.Args[1] == "send" || os.Args[1] == "receive") {
		tuneGC() // here, not in run: tests call run in their own process
		// quic-go checks the buffers of a stand-in socket (internal/peer/quic.go)
		// and would print to stderr where the system caps them; the ICE
		// sockets are sized, as far as allowed, by internal/udpbatch.
		_ = os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	}
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stopTrace()
	stopProfile()
	writeHeapProfile(memProfile)
	stop()
	os.Exit(code)
}

// profile writes a CPU profile to path (for performance work); the pid is
// appended so both peers of `ferry bench` can be profiled at once.
func profile(path string) func() {
	return recordTo(path, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// writeHeapProfile writes a heap profile (live and allocated since start)
// to path.<pid>, for finding where a peer's memory and garbage come from.
func writeHeapProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		return
	}
	_ = pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
}

// traceTo writes an execution trace to path.<pid> (go tool trace), for
// finding where a transfer waits.
func traceTo(path string) func() {
	return recordTo(path, trace.Start, trace.Stop)
}

// recordTo starts a recording into path.<pid> and returns what ends it;
// without a path, or if it cannot start, it does nothing.
func recordTo(path string, start func(io.Writer) error, stop func()) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		return func() {}
	}
	if err := start(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		stop()
		f.Close()
	}
}
