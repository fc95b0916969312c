// Package weed runs a private SeaweedFS (`weed server -filer -s3`): a real
// S3 server on free loopback ports, in a folder of the caller's, with one
// identity and one bucket, stopped by pid. The tests (internal/s3test) and
// `ferry bench --store` use it. The weed binary is built from SeaweedFS's
// Go module by scripts/weed.sh into a cache folder.
package weed

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
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the SeaweedFS module version scripts/weed.sh builds (a test
// checks that they agree).
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// ErrNotBuilt: the weed binary is not where scripts/weed.sh puts it.
var ErrNotBuilt = errors.New("weed: SeaweedFS is not built (scripts/weed.sh builds it, a few minutes once)")

// startTimeout bounds one start-up: the master, volume server, filer and
// S3 gateway coming up, and a first write going through.
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

// Built says whether Binary exists.
func Built() bool {
	fi, err := os.Stat(Binary())
	return err == nil && !fi.IsDir()
}

// Server is one weed subprocess.
type Server struct {
	Endpoint  string // host:port of the S3 gateway (plain http)
	AccessKey string
	SecretKey string
	Bucket    string

	dir  string
	opts Options
	bin  string
	cmd  *exec.Cmd
	done chan struct{}
	// grpc ports (weed leaves Unix sockets named by them in /tmp), and the
	// master and filer addresses for `weed shell`.
	grpc          []int
	master, filer string
}

// Options say where SeaweedFS keeps its data and how much it may hold.
type Options struct {
	// Dir holds weed's data and log; it must exist and is the caller's to
	// remove.
	Dir    string
	Bucket string
	// VolumeSizeMB is the size of one volume (0: 64). Small volumes, and
	// enough of them for a few collections, suit tests: the default 30 GB
	// would leave a test disk room for two.
	VolumeSizeMB int
	// MaxVolumes bounds their number (0: 32; -1: as many as the free disk
	// space holds).
	MaxVolumes int
}

// Start runs SeaweedFS and creates o.Bucket. The caller stops it with
// Stop; if the caller's process dies, weed is killed too.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotBuilt, err)
	}
	if o.VolumeSizeMB == 0 {
		o.VolumeSizeMB = 64
	}
	switch o.MaxVolumes {
	case 0:
		o.MaxVolumes = 32
	case -1:
		o.MaxVolumes = 0 // weed's "as the free space holds"
	}
	s := &Server{dir: o.Dir, Bucket: o.Bucket, AccessKey: "ferry" + randHex(6), SecretKey: randHex(20), opts: o}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	// A free port can be taken between our probe and weed binding it: try a few.
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		err := s.start(ctx, bin)
		if err == nil {
			return s, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt+1, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("weed did not start: %w\n%s", errors.Join(errs...), s.LogTail())
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

// LogTail is the end of weed's output, for failure messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.logPath())
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func (s *Server) start(ctx context.Context, bin string) error {
	p, err := freePorts(8)
	if err != nil {
		return err
	}
	// A fresh folder per attempt: a master that finds an earlier attempt's
	// state with its volumes gone freezes volume growth ("master state
	// loss"), and the bucket never gets a volume.
	data := filepath.Join(s.dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
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
		"-master.volumeSizeLimitMB=" + strconv.Itoa(s.opts.VolumeSizeMB), "-volume.max=" + strconv.Itoa(s.opts.MaxVolumes),
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
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	s.Endpoint = net.JoinHostPort("127.0.0.1", port(6))
	s.bin = bin
	s.grpc = []int{p[1], p[3], p[5], p[7]}
	s.master = "127.0.0.1:" + port(0) + "." + port(1)
	s.filer = "127.0.0.1:" + port(4) + "." + port(5)

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.kill()
		return err
	}
	return nil
}

// Client returns a minio-go client signed in as the server's identity.
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
	ok, err := c.BucketExists(ctx, s.Bucket)
	if err != nil {
		return err
	}
	if !ok {
		if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{}); err != nil {
			return err
		}
	}
	const probe = ".weed-probe"
	if _, err := c.PutObject(ctx, s.Bucket, probe, strings.NewReader("ok"), 2, minio.PutObjectOptions{}); err != nil {
		return err
	}
	return c.RemoveObject(ctx, s.Bucket, probe, minio.RemoveObjectOptions{})
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	s.removeSockets()
}

// removeSockets removes the gRPC Unix sockets weed makes at fixed paths in
// /tmp, named by port (not under -dir), and leaves behind when it ends.
func (s *Server) removeSockets() {
	for _, port := range s.grpc {
		for _, name := range []string{"master", "volume", "filer", "s3"} {
			_ = os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", name, port))
		}
	}
}

// Shell runs commands in `weed shell` against the server (SeaweedFS's admin
// commands, such as s3.bucket.quota) and returns what it printed.
func (s *Server) Shell(ctx context.Context, commands string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, "shell", "-master="+s.master, "-filer="+s.filer)
	cmd.Stdin = strings.NewReader(commands + "\nexit\n")
	dieWithParent(cmd)
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

// Pid is weed's process id, 0 when stopped.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop terminates weed by pid (SIGTERM, then SIGKILL after 10 s).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		s.cmd = nil
		s.removeSockets()
	case <-time.After(10 * time.Second):
		s.kill()
	}
}

// Kill ends weed by pid at once (SIGKILL): for data that is thrown away,
// where its graceful shutdown (over 10 s) buys nothing.
func (s *Server) Kill() { s.kill() }
