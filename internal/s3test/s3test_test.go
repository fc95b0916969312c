package s3test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

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
}
