package storedpeer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/redistest"
	"github.com/ferrydev/ferry/internal/s3test"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/servertest"
	"github.com/ferrydev/ferry/internal/stored"
	"github.com/ferrydev/ferry/internal/storedpeer"
	"github.com/ferrydev/ferry/internal/testenv"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// clock is a server clock tests move forward.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type env struct {
	srv   *server.Server
	base  *url.URL
	dir   string // --store-dir
	clock *clock
}

func start(t *testing.T, change func(*config.Serve)) *env {
	t.Helper()
	cfg := servertest.Config()
	cfg.Store.Dir = t.TempDir()
	cfg.Store.Unlimited = true
	if change != nil {
		change(&cfg)
	}
	c := &clock{}
	srv := servertest.Start(t, cfg, server.Options{Now: c.now})
	return &env{srv: srv, base: srv.URL(), dir: cfg.Store.Dir, clock: c}
}

// tree writes files under a fresh folder and returns them as a sender offers them.
func tree(t *testing.T, sizes map[string]int) (string, []transfer.SourceFile) {
	t.Helper()
	root := t.TempDir()
	for name, n := range sizes {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		r := rand.New(rand.NewPCG(uint64(n), uint64(len(name))))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, _, err := transfer.Collect([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	return root, files
}

// sums maps each regular file under dir (relative, slash-separated) to its SHA-256.
func sums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, src, got string) {
	t.Helper()
	a, b := sums(t, src), sums(t, filepath.Join(got, filepath.Base(src)))
	if len(a) == 0 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("received tree differs: sent %d files, got %d", len(a), len(b))
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func upload(t *testing.T, e *env, files []transfer.SourceFile, downloads int) *storedpeer.Uploaded {
	t.Helper()
	c := &storedpeer.Client{Base: e.base}
	up, err := c.Upload(ctx(t), storedpeer.UploadOptions{Files: files, Downloads: &downloads, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

func receive(t *testing.T, link, out string) (*storedpeer.Received, error) {
	t.Helper()
	base, tk, err := ticket.ParseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	c := &storedpeer.Client{Base: base}
	return c.Receive(ctx(t), tk, storedpeer.ReceiveOptions{Dir: out})
}

// empty fails unless dir holds no file at all.
func empty(t *testing.T, dir string) {
	t.Helper()
	if s := sums(t, dir); len(s) > 0 {
		t.Fatalf("%s is not empty: %d files", dir, len(s))
	}
}

func TestStoredRoundTrip(t *testing.T) {
	e := start(t, nil)
	src, files := tree(t, map[string]int{"a.bin": 3<<20 + 5, "sub/b.txt": 10, "sub/deeper/empty": 0, "c.bin": 64 << 10})
	up := upload(t, e, files, 2)
	if up.Files != 4 || up.Downloads != 2 {
		t.Fatalf("%+v", up)
	}
	for i := range 2 {
		out := t.TempDir()
		res, err := receive(t, up.Link, out)
		if err != nil {
			t.Fatalf("download %d: %v", i+1, err)
		}
		if !res.Counted {
			t.Fatalf("download %d not counted: %v", i+1, res.CountErr)
		}
		sameTree(t, src, out)
	}
	// The third receiver is told the link is used up, and nothing is written.
	out := t.TempDir()
	if _, err := receive(t, up.Link, out); !errors.Is(err, storedpeer.ErrUsedUp) {
		t.Fatalf("third download: %v", err)
	}
	empty(t, out)
	// Used up: the janitor removed its data, and the link still says why.
	e.srv.SweepStored(ctx(t))
	empty(t, filepath.Join(e.dir, "blobs"))
	if _, err := receive(t, up.Link, out); !errors.Is(err, storedpeer.ErrUsedUp) {
		t.Fatalf("after the janitor: %v", err)
	}
	// A day after its expiry even the record is gone.
	e.clock.add(8*24*time.Hour + time.Second)
	e.srv.SweepStored(ctx(t))
	if _, err := receive(t, up.Link, out); !errors.Is(err, storedpeer.ErrNotFound) {
		t.Fatalf("a day after expiry: %v", err)
	}
}

func TestStoredExpiry(t *testing.T) {
	e := start(t, nil)
	_, files := tree(t, map[string]int{"x": 100 << 10})
	up := upload(t, e, files, 1)
	e.clock.add(7*24*time.Hour + time.Second)
	out := t.TempDir()
	if _, err := receive(t, up.Link, out); !errors.Is(err, storedpeer.ErrExpired) {
		t.Fatalf("after expiry: %v", err)
	}
	empty(t, out)
	e.srv.SweepStored(ctx(t))
	empty(t, filepath.Join(e.dir, "blobs"))
	if _, err := receive(t, up.Link, out); !errors.Is(err, storedpeer.ErrExpired) {
		t.Fatalf("after the janitor: %v", err)
	}
}

// dataFile returns the data object of transfer id on disk.
func dataFile(t *testing.T, e *env, id string) string {
	t.Helper()
	var found string
	_ = filepath.WalkDir(filepath.Join(e.dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, id) && filepath.Base(p) == "data" {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no data object of %s under %s", id, e.dir)
	}
	return found
}

func manifestFile(t *testing.T, e *env, id string) string {
	return filepath.Join(filepath.Dir(dataFile(t, e, id)), "manifest")
}

func TestStoredTampering(t *testing.T) {
	const rec = 65536 + 16
	cases := []struct {
		name   string
		change func(t *testing.T, e *env, a, b *storedpeer.Uploaded)
	}{
		{"a byte flipped", func(t *testing.T, e *env, a, _ *storedpeer.Uploaded) {
			p := dataFile(t, e, a.ID)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var x [1]byte
			_, _ = f.ReadAt(x[:], 3*rec+100)
			x[0] ^= 1
			_, _ = f.WriteAt(x[:], 3*rec+100)
		}},
		{"truncated", func(t *testing.T, e *env, a, _ *storedpeer.Uploaded) {
			if err := os.Truncate(dataFile(t, e, a.ID), 5*rec); err != nil {
				t.Fatal(err)
			}
		}},
		{"two records swapped", func(t *testing.T, e *env, a, _ *storedpeer.Uploaded) {
			b, err := os.ReadFile(dataFile(t, e, a.ID))
			if err != nil {
				t.Fatal(err)
			}
			r1 := bytes.Clone(b[1*rec : 2*rec])
			copy(b[1*rec:], b[2*rec:3*rec])
			copy(b[2*rec:], r1)
			if err := os.WriteFile(dataFile(t, e, a.ID), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"files swapped between two transfers", func(t *testing.T, e *env, a, b *storedpeer.Uploaded) {
			pa, pb := dataFile(t, e, a.ID), dataFile(t, e, b.ID)
			ba, _ := os.ReadFile(pa)
			bb, _ := os.ReadFile(pb)
			_ = os.WriteFile(pa, bb, 0o600)
			_ = os.WriteFile(pb, ba, 0o600)
		}},
		{"manifest of another transfer", func(t *testing.T, e *env, a, b *storedpeer.Uploaded) {
			mb, _ := os.ReadFile(manifestFile(t, e, b.ID))
			_ = os.WriteFile(manifestFile(t, e, a.ID), mb, 0o600)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := start(t, nil)
			// The same sizes, so swapped objects fit each other's records.
			_, fa := tree(t, map[string]int{"f1": 300 << 10, "f2": 200 << 10})
			_, fb := tree(t, map[string]int{"f1": 300 << 10, "f2": 200 << 10})
			a, b := upload(t, e, fa, 1), upload(t, e, fb, 1)
			c.change(t, e, a, b)
			out := t.TempDir()
			_, err := receive(t, a.Link, out)
			if !errors.Is(err, storedpeer.ErrTampered) {
				t.Fatalf("got %v, want ErrTampered", err)
			}
			// Nothing unverified was written: no file is in place.
			for name := range sums(t, out) {
				if !strings.Contains(name, ".ferry-") {
					t.Fatalf("%s was written", name)
				}
			}
		})
	}
}

// countingTransport counts the parts a client uploads.
type countingTransport struct {
	parts   atomic.Int64
	failAt  int64 // fail the connection of this part PUT (1-based), once
	cancel  context.CancelFunc
	stopped atomic.Bool
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/parts/") {
		n := c.parts.Add(1)
		if n == c.failAt && c.cancel != nil && c.stopped.CompareAndSwap(false, true) {
			c.cancel() // the sender stops here, as if killed
			return nil, context.Canceled
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestStoredUploadResumes(t *testing.T) {
	e := start(t, nil)
	src, files := tree(t, map[string]int{"big": 3*depot.PartSize + 1000, "small": 10})
	state := t.TempDir()
	c1, cancel := context.WithCancel(ctx(t))
	tr := &countingTransport{failAt: 3, cancel: cancel}
	cl := &storedpeer.Client{Base: e.base, HTTP: &http.Client{Transport: tr}}
	one := 1
	if _, err := cl.Upload(c1, storedpeer.UploadOptions{Files: files, Downloads: &one, StateDir: state}); err == nil {
		t.Fatal("the interrupted upload succeeded")
	}
	stored := tr.parts.Load() - 1 // the last one never reached the server
	tr2 := &countingTransport{}
	cl2 := &storedpeer.Client{Base: e.base, HTTP: &http.Client{Transport: tr2}}
	up, err := cl2.Upload(ctx(t), storedpeer.UploadOptions{Files: files, Downloads: &one, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if up.Resumed == 0 || tr2.parts.Load()+stored != 4 {
		t.Fatalf("resumed %d bytes; parts: %d before, %d after, want 4 in all", up.Resumed, stored, tr2.parts.Load())
	}
	out := t.TempDir()
	if _, err := receive(t, up.Link, out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
}

// cutTransport ends a receiver (as Ctrl-C would) once it has read some of
// the data.
type cutTransport struct {
	after  int64
	cancel context.CancelFunc
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/data") {
		resp.Body = &cutBody{ReadCloser: resp.Body, left: c.after, cancel: c.cancel}
	}
	return resp, err
}

type cutBody struct {
	io.ReadCloser
	left   int64
	cancel context.CancelFunc
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.cancel()
		return 0, context.Canceled
	}
	n, err := b.ReadCloser.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}

func TestStoredAbortedDownloadDoesNotCount(t *testing.T) {
	e := start(t, nil)
	src, files := tree(t, map[string]int{"big": 6 << 20})
	up := upload(t, e, files, 1)
	base, tk, _ := ticket.ParseLink(up.Link)
	out := t.TempDir()
	c, cancel := context.WithCancel(ctx(t))
	cut := &storedpeer.Client{Base: base, HTTP: &http.Client{Transport: &cutTransport{after: 3 << 20, cancel: cancel}}}
	if _, err := cut.Receive(c, tk, storedpeer.ReceiveOptions{Dir: out}); err == nil {
		t.Fatal("the aborted download finished")
	}
	// The link still works, and the rerun continues where it stopped.
	var resumed int64
	res, err := (&storedpeer.Client{Base: base}).Receive(ctx(t), tk, storedpeer.ReceiveOptions{Dir: out, Progress: func(p transfer.Progress) { resumed = p.Resumed }})
	if err != nil || !res.Counted {
		t.Fatalf("%v %+v", err, res)
	}
	if resumed == 0 {
		t.Fatal("the second run fetched everything again")
	}
	sameTree(t, src, out)
}

func TestStoredDelete(t *testing.T) {
	e := start(t, nil)
	_, files := tree(t, map[string]int{"x": 10})
	up := upload(t, e, files, 1)
	if err := (&storedpeer.Client{Base: e.base}).Delete(ctx(t), up.ID, up.WriteToken); err != nil {
		t.Fatal(err)
	}
	empty(t, filepath.Join(e.dir, "blobs"))
	if _, err := receive(t, up.Link, t.TempDir()); !errors.Is(err, storedpeer.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestStoredPolicy(t *testing.T) {
	e := start(t, func(c *config.Serve) {
		c.Store.MaxSize = 1000
		c.Store.Unlimited = false
	})
	_, big := tree(t, map[string]int{"x": 2000})
	_, small := tree(t, map[string]int{"x": 10})
	c := &storedpeer.Client{Base: e.base}
	one, zero := 1, 0
	if _, err := c.Upload(ctx(t), storedpeer.UploadOptions{Files: big, Downloads: &one}); !errors.Is(err, storedpeer.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if _, err := c.Upload(ctx(t), storedpeer.UploadOptions{Files: small, Downloads: &zero}); !errors.Is(err, storedpeer.ErrBadRequest) {
		t.Fatalf("unlimited downloads not allowed: %v", err)
	}
	off := start(t, func(c *config.Serve) { c.Store.Enabled = false })
	if _, err := (&storedpeer.Client{Base: off.base}).Upload(ctx(t), storedpeer.UploadOptions{Files: small, Downloads: &one}); !errors.Is(err, storedpeer.ErrUnsupported) {
		t.Fatalf("storing off: %v", err)
	}
}

// Two instances share the metadata in Redis and the ciphertext in a real
// S3 server (SeaweedFS): uploaded through one, each download counted once
// whichever instance serves it.
func TestStoredTwoInstances(t *testing.T) {
	rd := redistest.Start(t)
	s3 := s3test.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
	var envs []*env
	for range 2 {
		envs = append(envs, start(t, func(c *config.Serve) {
			c.Redis = rd.URL()
			c.CookieSecret = "shared-cookie-secret-for-both"
			c.Store.S3 = config.S3{Endpoint: s3.Endpoint, Bucket: s3test.Bucket, Insecure: true, Prefix: "two/"}
		}))
	}
	a, b := envs[0], envs[1]
	src, files := tree(t, map[string]int{"big": 20<<20 + 7, "small": 3})
	up := upload(t, a, files, 2)
	onB := strings.Replace(up.Link, a.base.Host, b.base.Host, 1)
	for i, link := range []string{onB, up.Link} {
		out := t.TempDir()
		if res, err := receive(t, link, out); err != nil || !res.Counted {
			t.Fatalf("download %d: %v %+v", i+1, err, res)
		}
		sameTree(t, src, out)
	}
	if _, err := receive(t, onB, t.TempDir()); !errors.Is(err, storedpeer.ErrUsedUp) {
		t.Fatalf("third download: %v", err)
	}
	// Removed from the bucket too.
	b.srv.SweepStored(ctx(t))
	mc, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	for obj := range mc.ListObjects(ctx(t), s3test.Bucket, minio.ListObjectsOptions{Prefix: "two/", Recursive: true}) {
		t.Fatalf("left in the bucket: %s %v", obj.Key, obj.Err)
	}
}

// A server whose disk fills during an upload refuses it clearly and frees
// what the upload had taken.
func TestStoredDiskFull(t *testing.T) {
	disk := testenv.Tmpfs(t, "24m")
	e := start(t, func(c *config.Serve) { c.Store.Dir = disk })
	_, files := tree(t, map[string]int{"big": 40 << 20})
	one := 1
	_, err := (&storedpeer.Client{Base: e.base}).Upload(ctx(t), storedpeer.UploadOptions{Files: files, Downloads: &one, StateDir: t.TempDir()})
	if !errors.Is(err, storedpeer.ErrFull) {
		t.Fatalf("upload onto a full disk: %v", err)
	}
	empty(t, filepath.Join(disk, "blobs"))
	// Space came back: a smaller transfer fits.
	src, small := tree(t, map[string]int{"small": 5 << 20})
	up := upload(t, e, small, 1)
	out := t.TempDir()
	if _, err := receive(t, up.Link, out); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
}

// An old manifest of the same link, put back over a newer upload, is
// refused: it opens, but names another upload's keys.
func TestStoredOldManifestReplayed(t *testing.T) {
	e := start(t, nil)
	var tk ticket.Ticket
	tk.ID = ticket.NewID()
	copy(tk.Secret[:], bytes.Repeat([]byte{9}, 16))
	live := &storedpeer.Live{Ticket: tk, Token: e.srv.StoreToken(tk.ID)}
	c := &storedpeer.Client{Base: e.base}
	one := 1
	_, first := tree(t, map[string]int{"f": 200 << 10})
	up1, err := c.Upload(ctx(t), storedpeer.UploadOptions{Files: first, Downloads: &one, Live: live})
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(manifestFile(t, e, up1.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx(t), up1.ID, up1.WriteToken); err != nil {
		t.Fatal(err)
	}
	_, second := tree(t, map[string]int{"f": 200 << 10, "g": 5})
	up2, err := c.Upload(ctx(t), storedpeer.UploadOptions{Files: second, Downloads: &one, Live: live})
	if err != nil || up2.Link != up1.Link {
		t.Fatalf("second upload under the same link: %v (%s, %s)", err, up1.Link, up2.Link)
	}
	if err := os.WriteFile(manifestFile(t, e, up2.ID), old, 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := receive(t, up2.Link, out); !errors.Is(err, storedpeer.ErrTampered) {
		t.Fatalf("old manifest replayed: %v", err)
	}
	for name := range sums(t, out) {
		if !strings.Contains(name, ".ferry-") {
			t.Fatalf("%s was written", name)
		}
	}
}

// An upload that stops for good (its sender killed) is removed by the
// janitor once --store-upload-within has passed: nothing is left behind.
func TestStoredAbandonedUploadRemoved(t *testing.T) {
	e := start(t, nil)
	_, files := tree(t, map[string]int{"big": 3 * depot.PartSize})
	c1, cancel := context.WithCancel(ctx(t))
	tr := &countingTransport{failAt: 2, cancel: cancel}
	one := 1
	_, err := (&storedpeer.Client{Base: e.base, HTTP: &http.Client{Transport: tr}}).Upload(c1, storedpeer.UploadOptions{Files: files, Downloads: &one})
	if err == nil {
		t.Fatal("the interrupted upload succeeded")
	}
	if len(sums(t, filepath.Join(e.dir, "blobs"))) == 0 {
		t.Fatal("nothing was stored before the interruption")
	}
	e.srv.SweepStored(ctx(t))
	if len(sums(t, filepath.Join(e.dir, "blobs"))) == 0 {
		t.Fatal("the janitor removed an upload still within its time")
	}
	e.clock.add(24*time.Hour + time.Second)
	e.srv.SweepStored(ctx(t))
	empty(t, filepath.Join(e.dir, "blobs"))
}

// Quotas and who may store, through the API.
func TestStoredQuotaAndAccess(t *testing.T) {
	e := start(t, func(c *config.Serve) {
		c.Store.QuotaTotal = config.Bytes(stored.SealedSize(3 << 20))
		c.SenderTokens = config.List{"robot-token-1234567890"}
	})
	_, two := tree(t, map[string]int{"a": 2 << 20})
	one := 1
	anon := &storedpeer.Client{Base: e.base}
	if _, err := anon.Upload(ctx(t), storedpeer.UploadOptions{Files: two, Downloads: &one}); !errors.Is(err, storedpeer.ErrSignIn) {
		t.Fatalf("without a sender token: %v", err)
	}
	bot := &storedpeer.Client{Base: e.base, Token: "robot-token-1234567890"}
	up, err := bot.Upload(ctx(t), storedpeer.UploadOptions{Files: two, Downloads: &one})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bot.Upload(ctx(t), storedpeer.UploadOptions{Files: two, Downloads: &one}); !errors.Is(err, storedpeer.ErrQuota) {
		t.Fatalf("over the total quota: %v", err)
	}
	if err := bot.Delete(ctx(t), up.ID, up.WriteToken); err != nil {
		t.Fatal(err)
	}
	if _, err := bot.Upload(ctx(t), storedpeer.UploadOptions{Files: two, Downloads: &one}); err != nil {
		t.Fatalf("after deleting: %v", err)
	}

	far := start(t, func(c *config.Serve) { c.Store.AllowFrom = config.List{"10.0.0.0/8"} })
	if _, err := (&storedpeer.Client{Base: far.base}).Upload(ctx(t), storedpeer.UploadOptions{Files: two, Downloads: &one}); !errors.Is(err, storedpeer.ErrForbidden) {
		t.Fatalf("from a network not allowed: %v", err)
	}
}
