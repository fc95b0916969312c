// Package s3test runs a private SeaweedFS (`weed server -filer -s3`) for
// tests: a real S3 server, never a mock, on free loopback ports, in a
// temporary directory, with one identity and one bucket, stopped by pid when
// the test ends. The weed binary is built from SeaweedFS's Go module by
// scripts/weed.sh (run by scripts/deps.sh, so by `make test`) into a cache
// folder.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrydev/ferry/internal/testenv"
)

// Version is the SeaweedFS module version scripts/weed.sh builds (a test
// checks that they agree).
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// Bucket is the bucket Start creates.
const Bucket = "ferry-test"

// startTimeout bounds start-up: the master, volume server, filer and S3
// gateway coming up, and a first write going through.
const startTimeout = 90 * time.Second

// Binary returns where scripts/weed.sh puts the weed binary: $FERRY_WEED
// if set, else $FERRY_WEED_CACHE/weed, else
// ${XDG_CACHE_HOME:-~/.cache}/ferry/weed-<Version>/weed.
func Binary() string {
	if p := os.Getenv("FERRY_WEED"); p != "" {
		return p
	}
	if d := os.Getenv("FERRY_WEED_CACHE"); d != "" {
		return filepath.Join(d, "weed")
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "ferry", "weed-"+Version, "weed")
}

// Server is one weed subprocess.
type Server struct {
	Endpoint  string // host:port of the S3 gateway (plain http)
	AccessKey string
	SecretKey string

	bin    string
	master string // host:port.grpcPort, SeaweedFS's form for weed shell
	filer  string
	dir    string
	grpc   []int // gRPC ports, which name weed's sockets in /tmp
	cmd    *exec.Cmd
	done   chan struct{}
}

// Start runs SeaweedFS for the rest of the test and creates Bucket. Outside
// the heavy tier (testenv) it skips the test; in it, it fails the test if
// the weed binary has not been built.
func Start(t testing.TB) *Server {
	t.Helper()
	testenv.Heavy(t, "SeaweedFS (weed, built by scripts/weed.sh)")
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("SeaweedFS is needed: build it with scripts/weed.sh (run by scripts/deps.sh and `make test`; a few minutes once): %v", err)
	}
	s := &Server{bin: bin, dir: t.TempDir(), AccessKey: "ferry" + randHex(6), SecretKey: randHex(20)}
	if err := s.writeConfig(); err != nil {
		t.Fatal(err)
	}
	// A free port can be taken between our probe and weed binding it: try a few.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(bin); err == nil {
			break
		}
		t.Logf("weed did not start (attempt %d): %v", attempt+1, err)
	}
	if err != nil {
		t.Fatalf("weed: %v\n%s", err, s.logTail())
	}
	t.Cleanup(s.Stop)
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) writeConfig() error {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	cfg := struct {
		Identities []identity `json:"identities"`
	}{[]identity{{
		Name:        "ferry",
		Credentials: []cred{{s.AccessKey, s.SecretKey}},
		Actions:     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "s3.json"), b, 0o600)
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "weed.log") }

// logTail is the end of weed's output, for failure messages.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath())
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func (s *Server) start(bin string) error {
	p, err := freePorts(8)
	if err != nil {
		return err
	}
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	port := func(i int) string { return strconv.Itoa(p[i]) }
	args := []string{
		"server",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-dir=" + data,
		"-master.port=" + port(0), "-master.port.grpc=" + port(1),
		"-master.telemetry=false",
		// Small volumes, and enough of them for a few collections: the
		// default 30 GB would leave a test disk room for two.
		"-master.volumeSizeLimitMB=64", "-volume.max=32",
		"-volume.port=" + port(2), "-volume.port.grpc=" + port(3),
		"-filer", "-filer.port=" + port(4), "-filer.port.grpc=" + port(5),
		"-filer.localSocket=" + filepath.Join(s.dir, "filer.sock"),
		"-s3", "-s3.port=" + port(6), "-s3.port.grpc=" + port(7),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.localSocket=" + filepath.Join(s.dir, "s3.sock"),
		"-s3.config=" + filepath.Join(s.dir, "s3.json"),
	}
	logf, err := os.OpenFile(s.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// If the test binary dies, so does weed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	s.Endpoint = net.JoinHostPort("127.0.0.1", port(6))
	s.grpc = []int{p[1], p[3], p[5], p[7]}
	s.master = "127.0.0.1:" + port(0) + "." + port(1)
	s.filer = "127.0.0.1:" + port(4) + "." + port(5)

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.kill()
		return err
	}
	return nil
}

// Shell runs commands in `weed shell` against the server (SeaweedFS's admin
// commands, such as s3.bucket.quota) and returns what it printed.
func (s *Server) Shell(ctx context.Context, commands string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, "shell", "-master="+s.master, "-filer="+s.filer)
	cmd.Stdin = strings.NewReader(commands + "\nexit\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MakeBucket creates another bucket.
func (s *Server) MakeBucket(ctx context.Context, name string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.MakeBucket(ctx, name, minio.MakeBucketOptions{})
}

// Client returns a minio-go client signed in as the test identity.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
	})
}

// ready waits until the bucket exists and a first object can be written
// and removed: the S3 gateway answers, the filer reaches the master, and a
// volume has been grown for the bucket's collection.
func (s *Server) ready(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	var last error
	for {
		select {
		case <-s.done:
			return errors.New("weed exited at start-up")
		case <-ctx.Done():
			return fmt.Errorf("not ready within %v: %v", startTimeout, last)
		default:
		}
		last = s.probe(ctx, c)
		if last == nil {
			return nil
		}
		// Polling readiness, bounded by ctx.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

func (s *Server) probe(ctx context.Context, c *minio.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ok, err := c.BucketExists(ctx, Bucket)
	if err != nil {
		return err
	}
	if !ok {
		if err := c.MakeBucket(ctx, Bucket, minio.MakeBucketOptions{}); err != nil {
			return err
		}
	}
	const probe = ".s3test-probe"
	if _, err := c.PutObject(ctx, Bucket, probe, strings.NewReader("ok"), 2, minio.PutObjectOptions{}); err != nil {
		return err
	}
	return c.RemoveObject(ctx, Bucket, probe, minio.RemoveObjectOptions{})
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	// weed also serves gRPC on Unix sockets at fixed paths in /tmp, named
	// by port (not under -dir); it does not remove them when killed.
	for _, port := range s.grpc {
		for _, name := range []string{"master", "volume", "filer", "s3"} {
			_ = os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", name, port))
		}
	}
}

// Pid is weed's process id, 0 when stopped.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop ends weed by pid. SIGKILL at once: its data is a temporary folder,
// and its graceful shutdown (SIGTERM) takes over 10 s.
func (s *Server) Stop() { s.kill() }
