package s3test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// scripts/weed.sh builds the version this package looks for.
func TestVersionMatchesScript(t *testing.T) {
	b, err := os.ReadFile("../../scripts/weed.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nVERSION="+Version+"\n") {
		t.Errorf("scripts/weed.sh does not build SeaweedFS %s", Version)
	}
}

func TestStart(t *testing.T) {
	start := time.Now()
	s := Start(t)
	t.Logf("SeaweedFS ready in %v", time.Since(start).Round(time.Millisecond))
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := c.PutObject(ctx, Bucket, "a/b", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	o, err := c.GetObject(ctx, Bucket, "a/b", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var buf [16]byte
	n, _ := o.Read(buf[:])
	if string(buf[:n]) != "hello" {
		t.Errorf("read back %q", buf[:n])
	}
	pid := s.Pid()
	s.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("weed (pid %d) still runs after Stop", pid)
	}
	for _, port := range s.grpc {
		if left, _ := filepath.Glob(fmt.Sprintf("/tmp/seaweedfs-*-%d.sock", port)); len(left) > 0 {
			t.Errorf("weed left %q behind", left)
		}
	}
}
