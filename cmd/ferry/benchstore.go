//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrydev/ferry/internal/storedpeer"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/ferrydev/ferry/internal/units"
	"github.com/ferrydev/ferry/internal/weed"
)

// rssLimit is what the server may use while serving three downloads of
// one stored transfer at once (issue 14: "under 100 MB").
const rssLimit = 100e6

// concurrentDownloads is how many receivers fetch one transfer at once.
const concurrentDownloads = 3

// storeBench measures stored transfers: each side's throughput, CPU and
// the server's peak memory, on each backend, next to a plain S3 client.
type storeBench struct {
	self, tmp, file string
	size            int64
	runs            int
	io              stdio
	notes           []string // said under the figures
}

// storeBackend is where one `ferry serve` child keeps the transfers.
type storeBackend struct {
	name string
	args []string // serve's flags for it
	env  []string
	// For the ceiling: a plain client of the same bucket.
	s3     *minio.Client
	bucket string
	prefix string
	// storagePid is SeaweedFS's pid when the bench started it (its CPU is
	// shown too), else 0.
	storagePid int
}

// phase is one measured step; medians are taken per field.
type phase struct {
	bytes   int64
	dur     time.Duration
	client  time.Duration // this process's CPU
	server  time.Duration // the serve child's CPU
	storage time.Duration // SeaweedFS's CPU, if it is ours
	rss     int64         // the serve child's peak RSS during the phase
}

func (p phase) gb() float64   { return float64(p.bytes) / 1e9 }
func (p phase) mbps() float64 { return float64(p.bytes) / 1e6 / p.dur.Seconds() }

func runStoreBench(ctx context.Context, f storeBenchFlags, self, tmp, file string, runs int, io stdio) error {
	if _, err := procCPU(os.Getpid()); err != nil {
		return fmt.Errorf("ferry bench --store reads /proc (Linux only): %w", err)
	}
	if runs < 1 {
		return errors.New("--runs must be at least 1")
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	b := &storeBench{self: self, tmp: tmp, file: file, size: fi.Size(), runs: runs, io: io}
	backends := []storeBackend{{name: "disk (--store-dir)"}}
	switch {
	case f.s3Endpoint != "":
		s3, err := b.externalS3(f)
		if err != nil {
			return err
		}
		backends = append(backends, s3)
	case f.seaweedfs && weed.Built():
		fmt.Fprintln(io.err, "starting SeaweedFS…")
		dir := filepath.Join(tmp, "seaweedfs")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		// Volumes as large as the disk allows: deleted objects keep their
		// space until SeaweedFS vacuums, and the bench writes many GB.
		w, err := weed.Start(ctx, weed.Options{Dir: dir, Bucket: "ferry-bench", VolumeSizeMB: 1024, MaxVolumes: -1})
		if err != nil {
			return err
		}
		defer w.Stop()
		mc, err := w.Client()
		if err != nil {
			return err
		}
		backends = append(backends, storeBackend{
			name:       "SeaweedFS " + weed.Version + " (started by the bench)",
			args:       []string{"--store-s3-endpoint", w.Endpoint, "--store-s3-bucket", w.Bucket, "--store-s3-insecure", "--store-s3-prefix", "ferry/"},
			env:        []string{"AWS_ACCESS_KEY_ID=" + w.AccessKey, "AWS_SECRET_ACCESS_KEY=" + w.SecretKey},
			s3:         mc,
			bucket:     w.Bucket,
			prefix:     "plain/",
			storagePid: w.Pid(),
		})
	case f.seaweedfs:
		b.notes = append(b.notes, "S3: skipped, SeaweedFS is not built (scripts/weed.sh builds it; or give --s3-endpoint)")
	default:
		b.notes = append(b.notes, "S3: skipped (--seaweedfs=false and no --s3-endpoint)")
	}

	fmt.Fprintf(io.out, "ferry bench --store: %s, %d runs on loopback (median); client = this process, server = a `ferry serve` child\n",
		units.Bytes(b.size), runs)
	var failed []string
	for _, be := range backends {
		ok, err := b.backend(ctx, be)
		if err != nil {
			return fmt.Errorf("%s: %w", be.name, err)
		}
		if !ok {
			failed = append(failed, be.name)
		}
	}
	for _, n := range b.notes {
		fmt.Fprintf(io.out, "note: %s\n", n)
	}
	if len(failed) > 0 {
		return fmt.Errorf("the server's peak RSS went over %.0f MB serving %d downloads at once (%v)", rssLimit/1e6, concurrentDownloads, failed)
	}
	return nil
}

// externalS3 is the backend of --s3-endpoint, with the usual environment
// credentials (never printed).
func (b *storeBench) externalS3(f storeBenchFlags) (storeBackend, error) {
	if f.s3Bucket == "" {
		return storeBackend{}, errors.New("--s3-endpoint needs --s3-bucket")
	}
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		return storeBackend{}, errors.New("--s3-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
	}
	mc, err := minio.New(f.s3Endpoint, &minio.Options{Creds: credentials.NewStaticV4(key, secret, ""), Secure: !f.s3Insecure})
	if err != nil {
		return storeBackend{}, err
	}
	prefix := "bench-" + ticket.NewID() + "/"
	args := []string{"--store-s3-endpoint", f.s3Endpoint, "--store-s3-bucket", f.s3Bucket, "--store-s3-prefix", prefix + "ferry/"}
	if f.s3Insecure {
		args = append(args, "--store-s3-insecure")
	}
	return storeBackend{name: "S3 " + f.s3Endpoint + " bucket " + f.s3Bucket, args: args, s3: mc, bucket: f.s3Bucket, prefix: prefix + "plain/"}, nil
}

// backend measures one backend and prints its lines; ok is false when the
// server went over rssLimit with concurrent downloads.
func (b *storeBench) backend(ctx context.Context, be storeBackend) (ok bool, err error) {
	fmt.Fprintf(b.io.err, "%s: starting ferry serve…\n", be.name)
	dir, err := os.MkdirTemp(b.tmp, "store-")
	if err != nil {
		return false, err
	}
	srv, err := startServeChild(ctx, b.self, dir, be.args, be.env)
	if err != nil {
		return false, err
	}
	defer srv.stop()
	files, _, err := transfer.Collect([]string{b.file})
	if err != nil {
		return false, err
	}
	c := &storedpeer.Client{Base: srv.base}
	var ups, downs []phase
	var last *storedpeer.Uploaded
	for i := range b.runs {
		var up *storedpeer.Uploaded
		// One download per run, then the concurrent ones of the last upload.
		downloads := 1 + concurrentDownloads
		p, err := b.measure(srv, be.storagePid, b.size, func() error {
			var err error
			up, err = c.Upload(ctx, storedpeer.UploadOptions{Files: files, Downloads: &downloads, Agent: "ferry/" + version})
			return err
		})
		if err != nil {
			return false, fmt.Errorf("upload %d: %w%s", i+1, err, srv.logTail())
		}
		ups = append(ups, p)
		_, tk, err := ticket.ParseLink(up.Link)
		if err != nil {
			return false, err
		}
		out := filepath.Join(dir, "out")
		p, err = b.measure(srv, be.storagePid, b.size, func() error {
			_, err := c.Receive(ctx, tk, storedpeer.ReceiveOptions{Dir: out})
			return err
		})
		if err != nil {
			return false, fmt.Errorf("download %d: %w%s", i+1, err, srv.logTail())
		}
		if err := os.RemoveAll(out); err != nil {
			return false, err
		}
		downs = append(downs, p)
		fmt.Fprintf(b.io.err, "run %d: upload %.1f MB/s, download %.1f MB/s\n", i+1, ups[i].mbps(), p.mbps())
		if last != nil {
			if err := c.Delete(ctx, last.ID, last.WriteToken); err != nil {
				return false, fmt.Errorf("deleting a measured transfer: %w", err)
			}
		}
		last = up
	}
	_, tk, err := ticket.ParseLink(last.Link)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(b.io.err, "%d downloads at once…\n", concurrentDownloads)
	conc, err := b.measure(srv, be.storagePid, concurrentDownloads*b.size, func() error {
		errs := make([]error, concurrentDownloads)
		var wg sync.WaitGroup
		for i := range concurrentDownloads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.Receive(ctx, tk, storedpeer.ReceiveOptions{Dir: filepath.Join(dir, fmt.Sprintf("out%d", i))})
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	if err != nil {
		return false, fmt.Errorf("%d downloads at once: %w%s", concurrentDownloads, err, srv.logTail())
	}
	for i := range concurrentDownloads {
		if err := os.RemoveAll(filepath.Join(dir, fmt.Sprintf("out%d", i))); err != nil {
			return false, err
		}
	}
	// Used up by now, so the server may have removed it already.
	if err := c.Delete(ctx, last.ID, last.WriteToken); err != nil && !errors.Is(err, storedpeer.ErrNotFound) {
		return false, fmt.Errorf("deleting a measured transfer: %w", err)
	}

	var plainUp, plainDown []phase
	if be.s3 != nil {
		if plainUp, plainDown, err = b.plain(ctx, be); err != nil {
			return false, fmt.Errorf("plain S3 client: %w", err)
		}
	}

	w := b.io.out
	storage := be.storagePid != 0
	fmt.Fprintf(w, "%s\n", be.name)
	up, down := medianPhase(ups), medianPhase(downs)
	fmt.Fprintf(w, "  upload       %8.1f MB/s  %s\n", up.mbps(), cpuLine(up, true, storage))
	fmt.Fprintf(w, "  download     %8.1f MB/s  %s\n", down.mbps(), cpuLine(down, true, storage))
	verdict := "PASS"
	if float64(conc.rss) >= rssLimit {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "  %d downloads at once: %.1f MB/s in all, %s; server peak RSS %.1f MB: %s (limit %.0f MB)\n",
		concurrentDownloads, conc.mbps(), cpuLine(conc, false, storage), float64(conc.rss)/1e6, verdict, rssLimit/1e6)
	if be.s3 != nil {
		pu, pd := medianPhase(plainUp), medianPhase(plainDown)
		fmt.Fprintf(w, "  plain PutObject %5.1f MB/s  %s   ferry/plain %.2f\n", pu.mbps(), cpuLine(pu, false, storage), up.mbps()/pu.mbps())
		fmt.Fprintf(w, "  plain GetObject %5.1f MB/s  %s   ferry/plain %.2f\n", pd.mbps(), cpuLine(pd, false, storage), down.mbps()/pd.mbps())
	}
	return verdict == "PASS", nil
}

// cpuLine is a phase's CPU-seconds per GB (and the server's peak RSS).
func cpuLine(p phase, server, storage bool) string {
	s := fmt.Sprintf("client %5.2f CPU-s/GB", p.client.Seconds()/p.gb())
	if server {
		s += fmt.Sprintf("  server %5.2f CPU-s/GB  server peak RSS %6.1f MB", p.server.Seconds()/p.gb(), float64(p.rss)/1e6)
	} else if p.rss > 0 || p.server > 0 {
		s += fmt.Sprintf("  server %5.2f CPU-s/GB", p.server.Seconds()/p.gb())
	}
	if storage {
		s += fmt.Sprintf("  SeaweedFS %5.2f CPU-s/GB", p.storage.Seconds()/p.gb())
	}
	return s
}

// plain uploads and downloads the file with minio-go alone, to the same
// bucket: what the S3 server and this machine can do without ferry.
func (b *storeBench) plain(ctx context.Context, be storeBackend) (ups, downs []phase, err error) {
	fmt.Fprintf(b.io.err, "plain S3 client…\n")
	for i := range b.runs {
		key := fmt.Sprintf("%s%s-%d", be.prefix, ticket.NewID(), i)
		p, err := b.measure(nil, be.storagePid, b.size, func() error {
			f, err := os.Open(b.file)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = be.s3.PutObject(ctx, be.bucket, key, f, b.size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		ups = append(ups, p)
		out := filepath.Join(b.tmp, "plain.out")
		p, err = b.measure(nil, be.storagePid, b.size, func() error {
			o, err := be.s3.GetObject(ctx, be.bucket, key, minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer o.Close()
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, o)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil && n != b.size {
				err = fmt.Errorf("got %d bytes of %d", n, b.size)
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		downs = append(downs, p)
		if err := os.Remove(out); err != nil {
			return nil, nil, err
		}
		if err := be.s3.RemoveObject(ctx, be.bucket, key, minio.RemoveObjectOptions{}); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(b.io.err, "plain run %d: PutObject %.1f MB/s, GetObject %.1f MB/s\n", i+1, ups[i].mbps(), p.mbps())
	}
	return ups, downs, nil
}

// measure runs f and returns its wall time, the CPU each process spent
// meanwhile and the server's peak RSS (srv nil: no server).
func (b *storeBench) measure(srv *serveChild, storagePid int, bytes int64, f func() error) (phase, error) {
	runtime.GC() // the previous phase's garbage is not this one's
	cpu := func(pid int) time.Duration {
		if pid == 0 {
			return 0
		}
		d, _ := procCPU(pid)
		return d
	}
	serverPid := 0
	if srv != nil {
		serverPid = srv.cmd.Process.Pid
		if err := resetPeakRSS(serverPid); err != nil {
			b.note("the server's peak RSS could not be reset between phases (%v): it is its peak since start", err)
		}
	}
	c0, s0, w0 := selfCPU(), cpu(serverPid), cpu(storagePid)
	start := time.Now()
	if err := f(); err != nil {
		return phase{}, err
	}
	p := phase{bytes: bytes, dur: time.Since(start), client: selfCPU() - c0, server: cpu(serverPid) - s0, storage: cpu(storagePid) - w0}
	if serverPid != 0 {
		rss, err := peakRSS(serverPid)
		if err != nil {
			return phase{}, err
		}
		p.rss = rss
	}
	return p, nil
}

func (b *storeBench) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	for _, m := range b.notes {
		if m == n {
			return
		}
	}
	b.notes = append(b.notes, n)
}

// medianPhase takes the median of each field on its own.
func medianPhase(ps []phase) phase {
	med := func(f func(phase) int64) int64 {
		v := make([]int64, len(ps))
		for i, p := range ps {
			v[i] = f(p)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	return phase{
		bytes:   ps[0].bytes,
		dur:     time.Duration(med(func(p phase) int64 { return int64(p.dur) })),
		client:  time.Duration(med(func(p phase) int64 { return int64(p.client) })),
		server:  time.Duration(med(func(p phase) int64 { return int64(p.server) })),
		storage: time.Duration(med(func(p phase) int64 { return int64(p.storage) })),
		rss:     med(func(p phase) int64 { return p.rss }),
	}
}

// serveChild is `ferry serve` run from this binary, stopped by pid.
type serveChild struct {
	cmd  *exec.Cmd
	base *url.URL
	log  string
	done chan struct{}
}

// startServeChild runs `ferry serve` on a free loopback port with its
// stored transfers in dir.
func startServeChild(ctx context.Context, self, dir string, args, env []string) (*serveChild, error) {
	// A free port can be taken between our probe and the child binding
	// it: try a few.
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := tryServeChild(ctx, self, dir, args, env)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("ferry serve did not start: %w", errors.Join(errs...))
}

func tryServeChild(ctx context.Context, self, dir string, args, env []string) (*serveChild, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self, append([]string{"serve", "--addr", addr, "--turn-listen", "", "--create-limit", "0",
		"--store-dir", filepath.Join(dir, "data"), "--log-level", "warn"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the bench dies, so does its server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &serveChild{cmd: cmd, base: &url.URL{Scheme: "http", Host: addr}, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base.String()+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("it exited%s", s.logTail())
		case <-ctx.Done():
			s.stop()
			return nil, fmt.Errorf("not answering on %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling for the port, not for a result
		}
	}
}

// logTail is the end of the server's log, for error messages.
func (s *serveChild) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) == 0 {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\nferry serve's log:\n" + string(b)
}

// stop ends the server by pid: SIGTERM, then SIGKILL after 10 s.
func (s *serveChild) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
