package netlab_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/ferrydev/ferry/internal/netlab"
	"github.com/ferrydev/ferry/internal/testenv"
)

// ferryBin is the ferry binary and emuBin the path emulator, built once
// for the whole run (by TestMain, before any test starts; read-only
// afterwards).
var ferryBin, emuBin string

func TestMain(m *testing.M) {
	if !testenv.HeavyEnabled() {
		os.Exit(m.Run()) // every test skips itself, saying why: build nothing
	}
	dir, err := os.MkdirTemp("", "netlab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// FERRY_NETLAB_BIN runs the lab against an already built binary (e.g.
	// bin/ferry from `make build`) instead of building one.
	if ferryBin = os.Getenv("FERRY_NETLAB_BIN"); ferryBin == "" {
		ferryBin, err = netlab.Build(dir)
	}
	if err == nil {
		emuBin, err = netlab.BuildEmulator(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
