package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/units"
)

// runBench measures a real transfer between two ferry processes on
// loopback: throughput, CPU seconds per GB and peak RSS of each side. With
// --store, it measures stored transfers instead (benchstore.go).
func runBench(ctx context.Context, args []string, io stdio) error {
	size := config.Bytes(1 << 30)
	var runs int
	var relay, keep bool
	var file string
	var extra config.List
	fs := newFlagSet("bench", "[flags]", io)
	fs.Var(&size, "size", "size of the random test file")
	fs.IntVar(&runs, "runs", 3, "number of transfers (the median is reported)")
	fs.BoolVar(&relay, "relay", false, "force the transfer through the bundled TURN relay")
	fs.StringVar(&file, "file", "", "send this file instead of a random one")
	fs.BoolVar(&keep, "keep", false, "keep the temporary files and the peers' logs (runN.sender.log, runN.receiver.log)")
	fs.Var(&extra, "peer-flags", "extra flags for both peers, comma-separated (e.g. --log-level=debug)")
	var sf storeBenchFlags
	sf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if sf.store && (relay || len(extra) > 0) {
		return errors.New("--relay and --peer-flags are for live transfers; they do not go with --store")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ferry-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(tmp)
	}
	if file == "" {
		file = filepath.Join(tmp, "payload.bin")
		fmt.Fprintf(io.err, "writing %s of random data…\n", units.Bytes(int64(size)))
		if err := writeRandom(file, int64(size)); err != nil {
			return err
		}
	}
	if sf.store {
		return runStoreBench(ctx, sf, self, tmp, file, runs, io)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}

	cfg := config.DefaultServe()
	cfg.Addr, cfg.TURN.Listen, cfg.TURN.RelayBind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	cfg.CreateLimit, cfg.JoinLimit = 0, 0
	cfg.Store.Enabled = false // a live transfer's bench
	srv, err := server.New(cfg, server.Options{})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go srv.Run(sctx)

	peerArgs := append([]string{"--json"}, extra...)
	if relay {
		peerArgs = append(peerArgs, "--relay-only")
	}
	var results []benchRun
	for i := range runs {
		out := filepath.Join(tmp, fmt.Sprintf("out%d", i))
		logs := ""
		if keep {
			logs = filepath.Join(tmp, fmt.Sprintf("run%d", i+1))
		}
		r, err := benchOnce(ctx, self, srv.URL().String(), file, out, logs, peerArgs)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		os.RemoveAll(out)
		r.bytes = fi.Size()
		results = append(results, r)
		fmt.Fprintf(io.err, "run %d: %s\n", i+1, r.String())
	}
	m := median(results)
	path := "direct"
	if relay {
		path = "relay"
	}
	fmt.Fprintf(io.out, "ferry bench: %s, %s, %d runs on loopback (median)\n", units.Bytes(fi.Size()), path, runs)
	fmt.Fprintf(io.out, "  throughput   %8.1f MB/s\n", m.mbps())
	fmt.Fprintf(io.out, "  sender       %8.2f CPU-s/GB   peak RSS %6.1f MB\n", m.send.cpu.Seconds()/m.gb(), float64(m.send.rss)/1e6)
	fmt.Fprintf(io.out, "  receiver     %8.2f CPU-s/GB   peak RSS %6.1f MB\n", m.recv.cpu.Seconds()/m.gb(), float64(m.recv.rss)/1e6)
	return nil
}

// storeBenchFlags are bench's flags for stored transfers.
type storeBenchFlags struct {
	store      bool
	s3Endpoint string
	s3Bucket   string
	s3Insecure bool
	seaweedfs  bool
}

func (f *storeBenchFlags) register(fs flagSet) {
	fs.BoolVar(&f.store, "store", false, "measure stored transfers instead: upload and download through a `ferry serve` child, on disk and on S3")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "with --store: S3 endpoint (host:port) to measure too, credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (default: a SeaweedFS the bench starts, if scripts/weed.sh built it)")
	fs.StringVar(&f.s3Bucket, "s3-bucket", "", "with --s3-endpoint: the bucket (the bench writes under bench-<random>/ and removes what it wrote)")
	fs.BoolVar(&f.s3Insecure, "s3-insecure", false, "with --s3-endpoint: plain HTTP")
	fs.BoolVar(&f.seaweedfs, "seaweedfs", true, "with --store and no --s3-endpoint: start SeaweedFS for the S3 figures if scripts/weed.sh built it")
}

func writeRandom(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type procStats struct {
	cpu time.Duration
	rss int64 // bytes
}

type benchRun struct {
	bytes      int64
	transfer   time.Duration // connected -> done, at the receiver
	send, recv procStats
}

func (r benchRun) gb() float64   { return float64(r.bytes) / 1e9 }
func (r benchRun) mbps() float64 { return float64(r.bytes) / 1e6 / r.transfer.Seconds() }

func (r benchRun) String() string {
	return fmt.Sprintf("%.1f MB/s; sender %.2f CPU-s/GB, %.0f MB RSS; receiver %.2f CPU-s/GB, %.0f MB RSS",
		r.mbps(), r.send.cpu.Seconds()/r.gb(), float64(r.send.rss)/1e6, r.recv.cpu.Seconds()/r.gb(), float64(r.recv.rss)/1e6)
}

func median(rs []benchRun) benchRun {
	s := append([]benchRun(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].transfer < s[j].transfer })
	m := s[len(s)/2]
	// Medians per metric, not the stats of the median run.
	med := func(f func(benchRun) int64) int64 {
		v := make([]int64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	m.send.cpu = time.Duration(med(func(r benchRun) int64 { return int64(r.send.cpu) }))
	m.recv.cpu = time.Duration(med(func(r benchRun) int64 { return int64(r.recv.cpu) }))
	m.send.rss = med(func(r benchRun) int64 { return r.send.rss })
	m.recv.rss = med(func(r benchRun) int64 { return r.recv.rss })
	return m
}

type event struct {
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
	Link  string    `json:"link"`
	Path  string    `json:"path"`
}

// benchOnce runs one sender and one receiver process to completion; with
// logs set, their stderr goes to logs+".sender.log" and logs+".receiver.log".
func benchOnce(ctx context.Context, self, server, file, out, logs string, peerArgs []string) (benchRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	send := exec.CommandContext(ctx, self, append(append([]string{"send", "--server", server}, peerArgs...), file)...)
	sendOut, err := send.StdoutPipe()
	if err != nil {
		return benchRun{}, err
	}
	closeLog, err := logTo(send, logs, ".sender.log")
	if err != nil {
		return benchRun{}, err
	}
	defer closeLog()
	if err := send.Start(); err != nil {
		return benchRun{}, err
	}
	defer send.Process.Kill() // no-op once it has exited
	sendEvents := bufio.NewScanner(sendOut)
	var link string
	for sendEvents.Scan() {
		var e event
		if json.Unmarshal(sendEvents.Bytes(), &e) == nil && e.Event == "link" {
			link = e.Link
			break
		}
	}
	if link == "" {
		send.Wait()
		return benchRun{}, errors.New("sender printed no link")
	}
	go io.Copy(io.Discard, sendOut)

	recv := exec.CommandContext(ctx, self, append([]string{"receive", "--out", out}, peerArgs...)...)
	recv.Env = append(os.Environ(), "FERRY_LINK="+link)
	recvOut, err := recv.StdoutPipe()
	if err != nil {
		return benchRun{}, err
	}
	closeLog, err = logTo(recv, logs, ".receiver.log")
	if err != nil {
		return benchRun{}, err
	}
	defer closeLog()
	if err := recv.Start(); err != nil {
		return benchRun{}, err
	}
	defer recv.Process.Kill()
	var connected, done time.Time
	sc := bufio.NewScanner(recvOut)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Event {
		case "connected":
			if connected.IsZero() {
				connected = e.Time
			}
		case "done":
			done = e.Time
		}
	}
	rerr, serr := recv.Wait(), send.Wait()
	if rerr != nil || serr != nil || done.IsZero() || connected.IsZero() {
		return benchRun{}, fmt.Errorf("transfer failed (receiver: %v, sender: %v)", rerr, serr)
	}
	return benchRun{transfer: done.Sub(connected), send: stats(send.ProcessState), recv: stats(recv.ProcessState)}, nil
}

// logTo sends cmd's stderr to logs+suffix, or discards it without logs.
func logTo(cmd *exec.Cmd, logs, suffix string) (func(), error) {
	cmd.Stderr = io.Discard
	if logs == "" {
		return func() {}, nil
	}
	f, err := os.Create(logs + suffix)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = f
	return func() { f.Close() }, nil
}

func stats(ps *os.ProcessState) procStats {
	st := procStats{cpu: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		st.rss = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return st
}
