package scaletest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/redistest"
	"github.com/ferrydev/ferry/internal/sigclient"
)

// loadPairs is the size of the load test: 2 500 tickets, 5 000 WebSockets
// open at once. The race detector allows at most 8 128 live goroutines, so
// a -race build runs a tenth of it (same code paths, smaller numbers).
func loadPairs() int {
	if raceEnabled {
		return 250
	}
	return 2500
}

const (
	// p99Bound is deliberately generous: the machine is shared and noisy;
	// the bound catches pathologies (serialisation, lost messages), not
	// regressions of a few milliseconds.
	p99Bound = 10 * time.Second
	// inFlight bounds the dials and joins in progress at once, so the
	// test measures the server rather than the listen backlog.
	inFlight = 256
)

// TestSignalingLoad pairs 2 500 tickets over 5 000 concurrent signaling
// WebSockets against one `ferry serve` process (memory store) on loopback:
// each pair creates, joins, is paired and relays one binary frame each way;
// all 5 000 stay open until every pair is done. It reports the pairing
// latency (receiver's join sent → its "paired"), the server's peak RSS and
// CPU time.
func TestSignalingLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runLoad(t, ctx, startFerryServe(t, buildFerry(t, ctx)))
}

// TestSignalingLoadRedis is the same load against one instance whose
// store is a redis-server: every ticket, slot and relayed frame goes
// through Redis (Lua scripts, pub/sub), as in a multi-instance deployment.
func TestSignalingLoadRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs := redistest.Start(t)
	runLoad(t, ctx, startFerryServe(t, buildFerry(t, ctx), "--redis", rs.URL()))
	// Redis's share of the work: utime and stime, fields 14 and 15 of
	// /proc/PID/stat, in USER_HZ (100 per second on Linux).
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rs.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:])) // after "pid (comm) "
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	t.Logf("redis-server: CPU %.2f s (user %.2f s, system %.2f s)", float64(ut+st)/100, float64(ut)/100, float64(st)/100)
}

func runLoad(t *testing.T, ctx context.Context, srv *ferryProc) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pairs := loadPairs()
	conns := 2 * pairs
	raiseNoFile(t, uint64(conns+1024))
	if lim := srv.openFilesLimit(t); lim < uint64(conns+256) {
		t.Fatalf("the server may open only %d files, %d sockets needed", lim, conns)
	}
	base := &url.URL{Scheme: "http", Host: srv.addr}
	// One transport for all dials; WebSockets take their connections over.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}}
	opts := sigclient.Options{HTTPClient: hc}

	type pair struct {
		id   string
		s, r *sigclient.Conn
		// latency of the receiver's pairing
		lat time.Duration
	}
	ps := make([]pair, pairs)
	start := time.Now()

	// Phase 1: every sender connects and creates its ticket; they stay.
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	var failed atomic.Int32
	fail := func(format string, a ...any) {
		if failed.Add(1) <= 10 {
			t.Errorf(format, a...)
		}
		cancel()
	}
	for i := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := sigclient.Dial(ctx, base, opts)
			if err != nil {
				fail("sender %d: %v", i, err)
				return
			}
			ps[i].s = s
			created, err := s.Create(ctx)
			if err != nil {
				fail("sender %d: create: %v", i, err)
				return
			}
			ps[i].id = created.ID
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	created := time.Since(start)

	// Phase 2: receivers join; both sides wait for "paired" and then relay
	// one frame each way, tagged with the pair's index so that a frame
	// delivered to the wrong pair is caught.
	frame := func(dir byte, i int) []byte {
		b := []byte{dir, 0, 0, 0, 0, 'f', 'e', 'r', 'r', 'y'}
		binary.BigEndian.PutUint32(b[1:], uint32(i))
		return b
	}
	exchange := func(i int, c *sigclient.Conn, send, want []byte) error {
		if err := c.WaitPaired(ctx); err != nil {
			return fmt.Errorf("paired: %w", err)
		}
		if err := c.SendFrame(ctx, send); err != nil {
			return err
		}
		got, err := c.NextFrame(ctx)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("got frame %x, want %x", got, want)
		}
		return nil
	}
	var relayed atomic.Int32
	joinStart := time.Now()
	for i := range ps {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := exchange(i, ps[i].s, frame('S', i), frame('R', i)); err != nil {
				fail("sender %d: %v", i, err)
				return
			}
			relayed.Add(1)
		}()
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			released := false
			release := func() {
				if !released {
					released = true
					<-sem
				}
			}
			defer release()
			r, err := sigclient.Dial(ctx, base, opts)
			if err != nil {
				fail("receiver %d: %v", i, err)
				return
			}
			ps[i].r = r
			t0 := time.Now()
			if _, err := r.Join(ctx, ps[i].id); err != nil {
				fail("receiver %d: join: %v", i, err)
				return
			}
			if err := r.WaitPaired(ctx); err != nil {
				fail("receiver %d: paired: %v", i, err)
				return
			}
			ps[i].lat = time.Since(t0)
			release()
			// WaitPaired already consumed "paired": relay directly.
			if err := r.SendFrame(ctx, frame('R', i)); err != nil {
				fail("receiver %d: %v", i, err)
				return
			}
			got, err := r.NextFrame(ctx)
			if err != nil || !bytes.Equal(got, frame('S', i)) {
				fail("receiver %d: frame %x, %v", i, got, err)
				return
			}
			relayed.Add(1)
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	paired := time.Since(joinStart)

	// Every WebSocket is still open here: count the server's sockets.
	sockets := srv.sockets(t)
	hwm := srv.vmHWM(t)

	// Phase 3: everyone leaves.
	closeStart := time.Now()
	for i := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ps[i].s.Close()
			ps[i].r.Close()
		}()
	}
	wg.Wait()
	closed := time.Since(closeStart)
	total := time.Since(start)
	user, sys := srv.stop(t)

	lats := make([]time.Duration, pairs)
	for i, p := range ps {
		lats[i] = p.lat
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	t.Logf("%d pairs, %d concurrent WebSockets (server held %d sockets at the peak)", pairs, conns, sockets)
	t.Logf("phases: create %v, join+pair+relay %v, close %v; total %v", created.Round(time.Millisecond),
		paired.Round(time.Millisecond), closed.Round(time.Millisecond), total.Round(time.Millisecond))
	t.Logf("pairing latency (join sent → paired): p50 %v, p90 %v, p99 %v, max %v",
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond),
		pct(0.99).Round(10*time.Microsecond), lats[len(lats)-1].Round(10*time.Microsecond))
	t.Logf("server: peak RSS (VmHWM) %.1f MiB, CPU %.2f s (user %.2f s, system %.2f s)",
		float64(hwm)/(1<<20), (user + sys).Seconds(), user.Seconds(), sys.Seconds())

	if n := int(relayed.Load()); n != conns {
		t.Fatalf("%d of %d sessions relayed", n, conns)
	}
	if sockets < conns {
		t.Fatalf("server held %d sockets with all %d WebSockets open", sockets, conns)
	}
	if p99 := pct(0.99); p99 > p99Bound {
		t.Fatalf("p99 pairing latency %v > %v", p99, p99Bound)
	}
	if lats[0] <= 0 {
		t.Fatal("a pairing latency was not measured")
	}
}

// raiseNoFile lifts this process's soft RLIMIT_NOFILE to at least need
// (the Go runtime usually has raised it to the hard limit already).
func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		t.Fatalf("RLIMIT_NOFILE hard limit %d < %d needed: raise it (ulimit -Hn, or LimitNOFILE= for a service)", lim.Max, need)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// buildFerry builds cmd/ferry into the test's temp dir.
func buildFerry(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ferrydev/ferry/cmd/ferry")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// ferryProc is a `ferry serve` subprocess.
type ferryProc struct {
	cmd  *exec.Cmd
	addr string
	log  string
	done chan struct{}
}

// startFerryServe runs `ferry serve` on a free loopback port with rate
// limits and the bundled TURN off, and waits for /healthz.
func startFerryServe(t *testing.T, bin string, extra ...string) *ferryProc {
	t.Helper()
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FERRY_") { // only our flags configure it
			env = append(env, e)
		}
	}
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := &ferryProc{addr: addr, log: filepath.Join(t.TempDir(), "serve.log"), done: make(chan struct{})}
		logf, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"serve", "--addr", addr, "--create-limit", "0", "--join-limit", "0", "--signal-conns-per-ip", "0",
			"--turn-listen", "", "--log-level", "warn", "--store-dir", t.TempDir()}, extra...)
		p.cmd = exec.Command(bin, args...)
		p.cmd.Env = env
		p.cmd.Stdout, p.cmd.Stderr = logf, logf
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
		t.Cleanup(func() { p.kill() })
		if p.waitHealthy() {
			return p
		}
		p.kill()
		if attempt == 3 {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("ferry serve did not become healthy on %s:\n%s", addr, b)
		}
	}
}

func (p *ferryProc) waitHealthy() bool {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false // e.g. the port was taken meanwhile
		default:
		}
		if resp, err := c.Get("http://" + p.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond) // polling readiness, bounded by deadline
	}
	return false
}

func (p *ferryProc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stop ends the server gracefully (SIGTERM) and returns its CPU time.
func (p *ferryProc) stop(t *testing.T) (user, sys time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
		t.Fatal("ferry serve did not stop within 15 s of SIGTERM")
	}
	if !p.cmd.ProcessState.Success() {
		b, _ := os.ReadFile(p.log)
		t.Errorf("ferry serve exited with %v:\n%s", p.cmd.ProcessState, b)
	}
	return p.cmd.ProcessState.UserTime(), p.cmd.ProcessState.SystemTime()
}

func (p *ferryProc) procFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p.cmd.Process.Pid, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vmHWM is the server's peak resident set size in bytes.
func (p *ferryProc) vmHWM(t *testing.T) int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.procFile(t, "status")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

func (p *ferryProc) openFilesLimit(t *testing.T) uint64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.procFile(t, "limits")))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			if f[0] == "unlimited" {
				return ^uint64(0)
			}
			n, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no open files limit in /proc/PID/limits")
	return 0
}

// sockets counts the server's open sockets.
func (p *ferryProc) sockets(t *testing.T) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}
