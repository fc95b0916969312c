package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"testing"
	"time"
)

// TestBenchStore runs `ferry bench --store` small and on disk only, so that
// the bench keeps working; the real figures come from `make bench-store`.
func TestBenchStore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ferry bench --store reads /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, "bench", "--store", "--size", "8MB", "--runs", "1", "--seaweedfs=false")
	// Its temporary folder (file, store, downloads) inside the test's.
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ferry bench --store: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	const (
		num = `[0-9]+\.[0-9]+`
		cpu = `client +` + num + ` CPU-s/GB +server +` + num + ` CPU-s/GB`
	)
	for _, want := range []string{
		`(?m)^ferry bench --store: 8\.0 MB, 1 runs on loopback`,
		`(?m)^disk \(--store-dir\)$`,
		`(?m)^  upload +` + num + ` MB/s +` + cpu + ` +server peak RSS +` + num + ` MB$`,
		`(?m)^  download +` + num + ` MB/s +` + cpu + ` +server peak RSS +` + num + ` MB$`,
		`(?m)^  3 downloads at once: ` + num + ` MB/s in all, ` + cpu + `; server peak RSS ` + num + ` MB: PASS \(limit 100 MB\)$`,
		`(?m)^note: S3: skipped`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("no line matching %s in:\n%s", want, out)
		}
	}
}
