package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Local names that could rearrange or recolour the terminal are printed
// escaped by `ferry send` (the skipped list and the refusal).
func TestSendEscapesLocalNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(out []byte, want string) {
		t.Helper()
		s := string(out)
		if strings.ContainsAny(s, "\u202e\x1b\u009b") {
			t.Errorf("raw control characters in the output: %q", s)
		}
		if !strings.Contains(s, want) {
			t.Errorf("output %q does not contain %q", s, want)
		}
	}

	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "invoice\u202efdp.exe"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, ferryBin, "send", "--server", "http://127.0.0.1:1", dir).CombinedOutput()
	if err == nil {
		t.Fatalf("sending a disguised name succeeded: %s", out)
	}
	check(out, `invoice\u202efdp.exe`)

	dir2 := filepath.Join(t.TempDir(), "e")
	if err := os.Mkdir(dir2, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "ok.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir2, "pipe\x1b[31m\u009b2J"), 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	out, _ = exec.CommandContext(ctx, ferryBin, "send", "--server", "http://127.0.0.1:1", dir2).CombinedOutput()
	check(out, `pipe\x1b[31m\u009b2J`)
}
