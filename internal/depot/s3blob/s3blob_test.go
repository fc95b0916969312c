package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/depot/depottest"
	"github.com/ferrydev/ferry/internal/s3test"
	"github.com/minio/minio-go/v7"
)

func TestBlobs(t *testing.T) {
	s := s3test.Start(t)
	var n atomic.Int64
	depottest.TestBlobs(t, func(t *testing.T) depot.Blobs {
		// A prefix of its own per subtest: an empty store in the shared bucket.
		b, err := New(Config{
			Endpoint:        s.Endpoint,
			Bucket:          s3test.Bucket,
			Prefix:          fmt.Sprintf("t%d/", n.Add(1)),
			AccessKeyID:     s.AccessKey,
			SecretAccessKey: s.SecretKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// The keys come from the environment or a credentials file when the
// configuration has none.
func TestCredentialChain(t *testing.T) {
	s := s3test.Start(t)
	cfg := Config{Endpoint: s.Endpoint, Bucket: s3test.Bucket, Prefix: "chain/"}
	check := func(what string) {
		t.Helper()
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Check(t.Context()); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if err := b.PutManifest(t.Context(), "x", []byte("m")); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_SESSION_TOKEN", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
		"AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE", "AWS_CONFIG_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	check("keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	file := filepath.Join(t.TempDir(), "credentials")
	ini := fmt.Sprintf("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[ferry]\naws_access_key_id = %s\naws_secret_access_key = %s\n", s.AccessKey, s.SecretKey)
	if err := os.WriteFile(file, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsFile, cfg.Profile = file, "ferry"
	check("keys from a credentials file")
}

// Neither printing nor logging a configuration shows its keys.
func TestConfigRedacted(t *testing.T) {
	cfg := Config{Endpoint: "s3.example", Bucket: "b", Prefix: "p/", TLS: true,
		AccessKeyID: "AKIDSECRETLOOKING", SecretAccessKey: "verysecretkey", SessionToken: "sessiontokenvalue"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("storage", "s3", cfg)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("storage", "s3", cfg)
	for _, out := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s %q", cfg, cfg, cfg, cfg, cfg), fmt.Sprintf("%v", &cfg), logged.String(),
	} {
		for _, secret := range []string{cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken} {
			if strings.Contains(out, secret) {
				t.Errorf("a key shows: %s", out)
			}
		}
		if !strings.Contains(out, "s3.example") {
			t.Errorf("the endpoint does not show: %s", out)
		}
	}
}

// S3 error codes that mean "full" become depot.ErrFull, keeping the code.
func TestErrorMapping(t *testing.T) {
	for code, want := range map[string]error{
		"EntityTooLarge":                 depot.ErrFull,
		"QuotaExceeded":                  depot.ErrFull,
		"XMinioStorageFull":              depot.ErrFull,
		"XMinioAdminBucketQuotaExceeded": depot.ErrFull,
		"NoSuchUpload":                   depot.ErrNotFound,
		"NoSuchKey":                      depot.ErrNotFound,
		"InvalidRange":                   depot.ErrRange,
		"InvalidPart":                    depot.ErrPart,
	} {
		err := wrap("op", minio.ErrorResponse{Code: code, StatusCode: 400})
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", code, err, want)
		}
	}
	err := wrap("op", minio.ErrorResponse{Code: "SomethingElse", StatusCode: 507})
	if !errors.Is(err, depot.ErrFull) {
		t.Errorf("HTTP 507: %v, want ErrFull", err)
	}
	if err := wrap("op", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}); errors.Is(err, depot.ErrFull) {
		t.Errorf("InternalError became ErrFull")
	}
}

// SeaweedFS turns a bucket over its quota read-only; the next part is
// ErrFull, and once space is freed and the quota checked again, it goes in.
func TestBucketQuotaIsFull(t *testing.T) {
	s := s3test.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const bucket = "quota"
	if err := s.MakeBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	shell := func(cmds string) {
		t.Helper()
		if out, err := s.Shell(ctx, cmds); err != nil {
			t.Fatalf("weed shell %q: %v\n%s", cmds, err, out)
		}
	}
	shell("s3.bucket.quota -name=" + bucket + " -op=set -sizeMB=4")
	b, err := New(Config{Endpoint: s.Endpoint, Bucket: bucket, AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte{1}, depot.PartSize)
	upload := func(id string) {
		t.Helper()
		up, err := b.Begin(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WritePart(ctx, id, up, 0, bytes.NewReader(part), depot.PartSize); err != nil {
			t.Fatal(err)
		}
		if err := b.Complete(ctx, id, up, 1); err != nil {
			t.Fatal(err)
		}
	}
	upload("big") // 8 MiB in a bucket of 4
	up, err := b.Begin(ctx, "next")
	if err != nil {
		t.Fatal(err)
	}
	// The volume server reports sizes in its heartbeats; the quota check
	// sees them a moment later.
	for {
		shell("s3.bucket.quota.enforce -apply")
		err = b.WritePart(ctx, "next", up, 0, bytes.NewReader(part[:100]), 100)
		if err != nil || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(500 * time.Millisecond): // polling the quota check, bounded by ctx
		case <-ctx.Done():
		}
	}
	if !errors.Is(err, depot.ErrFull) {
		t.Fatalf("WritePart in a bucket over quota: %v, want ErrFull", err)
	}
	t.Logf("over quota: %v", err)
	shell("s3.bucket.quota -name=" + bucket + " -op=set -sizeMB=64")
	for {
		shell("s3.bucket.quota.enforce -apply")
		err = b.WritePart(ctx, "next", up, 0, bytes.NewReader(part[:100]), 100)
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(500 * time.Millisecond): // polling the quota check, bounded by ctx
		case <-ctx.Done():
		}
	}
	if err != nil {
		t.Fatalf("WritePart once the quota has room: %v", err)
	}
	if err := b.Complete(ctx, "next", up, 1); err != nil {
		t.Fatal(err)
	}
}
