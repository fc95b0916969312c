// Package s3test runs a private SeaweedFS (internal/weed) for tests: a real
// S3 server, never a mock, on free loopback ports, in a temporary
// directory, with one identity and one bucket, stopped by pid when the test
// ends. The weed binary is built from SeaweedFS's Go module by
// scripts/weed.sh (run by scripts/deps.sh, so by `make test`) into a cache
// folder.
package s3test

import (
	"context"
	"errors"
	"testing"

	"github.com/ferrydev/ferry/internal/testenv"
	"github.com/ferrydev/ferry/internal/weed"
)

// Version is the SeaweedFS module version scripts/weed.sh builds.
const Version = weed.Version

// Bucket is the bucket Start creates.
const Bucket = "ferry-test"

// Binary returns where scripts/weed.sh puts the weed binary (weed.Binary).
func Binary() string { return weed.Binary() }

// Server is one weed subprocess: Endpoint, AccessKey, SecretKey, Client,
// Shell, MakeBucket, Pid, Stop, Kill.
type Server = weed.Server

// Start runs SeaweedFS for the rest of the test and creates Bucket. Outside
// the heavy tier (testenv) it skips the test; in it, it fails the test if
// the weed binary has not been built.
func Start(t testing.TB) *Server {
	t.Helper()
	testenv.Heavy(t, "SeaweedFS (weed, built by scripts/weed.sh)")
	s, err := weed.Start(context.Background(), weed.Options{Dir: t.TempDir(), Bucket: Bucket})
	if errors.Is(err, weed.ErrNotBuilt) {
		t.Fatalf("SeaweedFS is needed: build it with scripts/weed.sh (run by scripts/deps.sh and `make test`; a few minutes once): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill) // its data is a temporary folder
	return s
}
