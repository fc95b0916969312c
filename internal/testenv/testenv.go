// Package testenv sorts ferry's tests into two tiers. Unit tests need only
// Go (and the ferry binary they build); heavy tests also need a real browser,
// redis-server, coturn, or root for network namespaces. `make test` (and so
// CI) runs both tiers with FERRY_TEST_HEAVY=1, where a missing dependency
// fails the test; `make unit` and a plain `go test ./...` skip heavy tests,
// each with a message that names what it needs.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Env is the variable that selects the tiers: "1" runs heavy tests too.
const Env = "FERRY_TEST_HEAVY"

// HeavyEnabled reports whether heavy tests run in this process.
func HeavyEnabled() bool { return os.Getenv(Env) == "1" }

// Heavy marks t as a heavy test that needs what (e.g. "Chromium"). Unless
// heavy tests are enabled it skips t, saying what it needs and how to run it;
// when they are, the caller goes on to start what and fails if it cannot.
func Heavy(t testing.TB, what string) {
	t.Helper()
	switch v := os.Getenv(Env); v {
	case "1":
	case "", "0":
		t.Skipf("heavy test, needs %s: runs in `make test` (or with %s=1)", what, Env)
	default:
		t.Fatalf("%s=%q: want 1 (run heavy tests) or 0 (skip them)", Env, v)
	}
}

// Tmpfs mounts a tmpfs of size (mount's syntax, e.g. "8m") on a fresh
// folder for the rest of the test and returns the folder: a small disk to
// fill. It is a heavy test's: mounting needs root.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	Heavy(t, "root (it mounts a small tmpfs)")
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs and needs root (CI runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "small-disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, msg)
	}
	t.Cleanup(func() {
		if msg, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, msg)
		}
	})
	return dir
}
