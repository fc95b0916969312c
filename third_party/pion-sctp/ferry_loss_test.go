// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package sctp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
)

// An in-process path with delay, random loss and an optional bottleneck,
// to see how the association recovers from loss (ferry patch tests and
// TestFerryLossBench).

// lossyPath is one direction of a lossyLink.
type lossyPath struct {
	delay time.Duration
	loss  float64
	burst int               // packets each loss event drops (1: independent losses)
	rate  float64           // bytes per second at the bottleneck; 0: none
	drop  func([]byte) bool // drops chosen packets, if set (before any loss)

	mu      sync.Mutex
	rng     *rand.Rand
	departs time.Time // when the bottleneck is free again
	toDrop  int       // packets left in the current loss burst
	dropped int
	sent    int

	q   chan timedPacket // in flight, in order of arrival time
	out chan []byte      // arrived, for Read
}

type timedPacket struct {
	at time.Time
	b  []byte
}

// queueLimit bounds the packets on the path (the bottleneck's queue and
// the delay line together); beyond it packets are dropped as a router's
// full queue would.
const queueLimit = 1 << 16

func newLossyPath(delay time.Duration, loss float64, burst int, rate float64, seed int64) *lossyPath {
	return &lossyPath{
		delay: delay, loss: loss, burst: max(burst, 1), rate: rate,
		rng: rand.New(rand.NewSource(seed)), //nolint:gosec
		q:   make(chan timedPacket, queueLimit),
		out: make(chan []byte, 1024),
	}
}

func (p *lossyPath) send(b []byte) {
	now := time.Now()
	p.mu.Lock()
	p.sent++
	if p.drop != nil && p.drop(b) {
		p.dropped++
		p.mu.Unlock()

		return
	}
	if p.toDrop == 0 && p.loss > 0 && p.rng.Float64() < p.loss/float64(p.burst) {
		p.toDrop = p.burst
	}
	if p.toDrop > 0 {
		p.toDrop--
		p.dropped++
		p.mu.Unlock()

		return
	}
	at := now
	if p.rate > 0 {
		if p.departs.Before(now) {
			p.departs = now
		}
		p.departs = p.departs.Add(time.Duration(float64(len(b)) / p.rate * float64(time.Second)))
		at = p.departs
	}
	at = at.Add(p.delay)
	p.mu.Unlock()
	select {
	case p.q <- timedPacket{at: at, b: append([]byte(nil), b...)}:
	default:
		p.mu.Lock()
		p.dropped++
		p.mu.Unlock()
	}
}

// run delivers packets when they are due, until done closes.
func (p *lossyPath) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var pkt timedPacket
		select {
		case pkt = <-p.q:
		case <-done:
			return
		}
		if d := time.Until(pkt.at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-done:
				return
			}
		}
		select {
		case p.out <- pkt.b:
		case <-done:
			return
		}
	}
}

func (p *lossyPath) counts() (sent, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.sent, p.dropped
}

// lossyConn is one end of a lossyLink: writes go into tx, reads come from rx.
type lossyConn struct {
	tx, rx    *lossyPath
	done      chan struct{}
	closeOnce *sync.Once
}

var errLossyClosed = errors.New("lossy link closed")

func (c *lossyConn) Read(b []byte) (int, error) {
	select {
	case pkt := <-c.rx.out:
		return copy(b, pkt), nil
	case <-c.done:
		return 0, io.EOF
	}
}

func (c *lossyConn) Write(b []byte) (int, error) {
	select {
	case <-c.done:
		return 0, errLossyClosed
	default:
	}
	c.tx.send(b)

	return len(b), nil
}

func (c *lossyConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })

	return nil
}

func (c *lossyConn) LocalAddr() net.Addr              { return &net.UDPAddr{} }
func (c *lossyConn) RemoteAddr() net.Addr             { return &net.UDPAddr{} }
func (c *lossyConn) SetDeadline(time.Time) error      { return nil }
func (c *lossyConn) SetReadDeadline(time.Time) error  { return nil }
func (c *lossyConn) SetWriteDeadline(time.Time) error { return nil }
func (c *lossyConn) String() string                   { return "lossy" }

// newLossyLink returns two connected ends; each direction has its own
// loss (seeded) and delay. Closing either end stops both directions.
func newLossyLink(delay time.Duration, loss float64, burst int, rate float64, seed int64) (a, b *lossyConn, stop func()) {
	ab := newLossyPath(delay, loss, burst, rate, seed)
	ba := newLossyPath(delay, loss, burst, rate, seed+1)
	done := make(chan struct{})
	once := &sync.Once{}
	a = &lossyConn{tx: ab, rx: ba, done: done, closeOnce: once}
	b = &lossyConn{tx: ba, rx: ab, done: done, closeOnce: once}
	var wg sync.WaitGroup
	for _, p := range []*lossyPath{ab, ba} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(done)
		}()
	}

	return a, b, func() {
		a.Close() //nolint:errcheck,gosec
		wg.Wait()
	}
}

// lossRun is what one transfer over a lossy link measured.
type lossRun struct {
	bytes        int
	elapsed      time.Duration
	t3, fastRtx  uint64
	dropped      int
	sent         int
	cwndTrace    []uint32 // sender's cwnd every traceEvery
	ssthreshLast uint32
	// fastRecoveries counts entries into fast recovery (by either side's
	// trace log; only the sender enters it).
	fastRecoveries int
}

func (r lossRun) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

const traceEvery = 100 * time.Millisecond

// lossCase is one transfer over a lossy link.
type lossCase struct {
	delay    time.Duration // one way
	loss     float64       // each way
	burst    int           // packets per loss event
	rate     float64       // bottleneck, bytes/s (0: none)
	seed     int64
	total    int // bytes
	msgSize  int
	mtu      uint32
	rbuf     uint32
	timeout  time.Duration
	drop     func([]byte) bool // client to server
	dropBack func([]byte) bool // server to client
	// tolerance is the sender's WithLossTolerance.
	tolerance float64
}

// lossTransfer sends c.total bytes in c.msgSize messages from a client to
// a server association over a lossy link and waits until all are read.
func lossTransfer(t *testing.T, c lossCase) lossRun {
	t.Helper()
	c0, c1, stop := newLossyLink(c.delay, c.loss, c.burst, c.rate, c.seed)
	defer stop()
	c0.tx.mu.Lock()
	c0.tx.drop = c.drop
	c0.tx.mu.Unlock()
	c1.tx.mu.Lock()
	c1.tx.drop = c.dropBack
	c1.tx.mu.Unlock()
	lf := &countingLoggerFactory{}
	type res struct {
		a   *Association
		err error
	}
	srvCh := make(chan res, 1)
	go func() {
		a, err := Server(Config{
			NetConn: c1, LoggerFactory: lf, MaxReceiveBufferSize: c.rbuf, MTU: c.mtu, BlockWrite: true,
		})
		srvCh <- res{a, err}
	}()
	client, err := ClientWithOptions(Config{
		NetConn: c0, LoggerFactory: lf, MaxReceiveBufferSize: c.rbuf, MTU: c.mtu, BlockWrite: true,
	}, WithLossTolerance(c.tolerance))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() //nolint:errcheck
	srv := <-srvCh
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	defer srv.a.Close() //nolint:errcheck
	total, msgSize, timeout := c.total, c.msgSize, c.timeout

	out, err := client.OpenStream(1, PayloadTypeWebRTCBinary)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = out.SetWriteDeadline(time.Now().Add(timeout))
	werr := make(chan error, 1)
	start := time.Now()
	go func() {
		msg := make([]byte, msgSize)
		for sent := 0; sent < total; sent += msgSize {
			if _, err := out.Write(msg); err != nil {
				werr <- err

				return
			}
		}
		werr <- nil
	}()

	var run lossRun
	traceDone := make(chan struct{})
	traceStop := make(chan struct{})
	go func() {
		defer close(traceDone)
		tick := time.NewTicker(traceEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				run.cwndTrace = append(run.cwndTrace, client.CWND())
			case <-traceStop:
				return
			}
		}
	}()

	in, err := srv.a.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-ctx.Done(); _ = in.SetReadDeadline(time.Now()) }()
	buf := make([]byte, msgSize)
	for got := 0; got < total; {
		n, err := in.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes in %v: %v (t3 %d, fast rtx %d, cwnd %d)", got, total,
				time.Since(start).Round(time.Millisecond), err,
				client.stats.getNumT3Timeouts(), client.stats.getNumFastRetrans(), client.CWND())
		}
		got += n
	}
	run.elapsed = time.Since(start)
	close(traceStop)
	<-traceDone
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	run.bytes = total
	run.t3 = client.stats.getNumT3Timeouts()
	run.fastRtx = client.stats.getNumFastRetrans()
	run.sent, run.dropped = c0.tx.counts()
	client.lock.RLock()
	run.ssthreshLast = client.ssthresh
	client.lock.RUnlock()
	run.fastRecoveries = int(lf.fastRecoveries.Load())

	return run
}

// countingLoggerFactory logs errors only and counts the association's
// trace lines that report entering fast recovery.
type countingLoggerFactory struct {
	fastRecoveries atomic.Int64
}

func (f *countingLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return &countingLogger{f: f, LeveledLogger: logging.NewDefaultLeveledLoggerForScope(scope, logging.LogLevelError, os.Stderr)}
}

type countingLogger struct {
	logging.LeveledLogger
	f *countingLoggerFactory
}

func (l *countingLogger) Tracef(format string, args ...any) {
	if strings.HasSuffix(format, "(FR)") {
		l.f.fastRecoveries.Add(1)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}

	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}

	return def
}

// TestFerryLossBench measures throughput over a 30 ms RTT path at several
// loss rates (not a test: FERRY_SCTP_LOSS_BENCH=1 runs it).
//
//	FERRY_SCTP_LOSS_BENCH=1 go test -run TestFerryLossBench -v -timeout 30m .
//	  FERRY_LOSS="0,0.002,0.01"  loss each way
//	  FERRY_MIB=32               MiB per run
//	  FERRY_RUNS=3               runs per loss rate (median printed)
//	  FERRY_DELAY_MS=15          one-way delay
//	  FERRY_BURST=1              packets each loss event drops
//	  FERRY_TOLERANCE=0          the sender's WithLossTolerance
//	  FERRY_RATE_MBS=0           bottleneck in MB/s (0: none)
//	  FERRY_MTU=1191 FERRY_RBUF_MIB=8 FERRY_MSG_KIB=64
func TestFerryLossBench(t *testing.T) {
	if os.Getenv("FERRY_SCTP_LOSS_BENCH") == "" {
		t.Skip("FERRY_SCTP_LOSS_BENCH=1 runs the loss benchmark")
	}
	losses := []float64{0, 0.002, 0.01}
	if s := os.Getenv("FERRY_LOSS"); s != "" {
		losses = nil
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, v)
		}
	}
	total := envInt("FERRY_MIB", 32) << 20
	runs := envInt("FERRY_RUNS", 3)
	delay := time.Duration(envInt("FERRY_DELAY_MS", 15)) * time.Millisecond
	rate := envFloat("FERRY_RATE_MBS", 0) * 1e6
	mtu := uint32(envInt("FERRY_MTU", 1191))          //nolint:gosec
	rbuf := uint32(envInt("FERRY_RBUF_MIB", 8) << 20) //nolint:gosec
	msg := envInt("FERRY_MSG_KIB", 64) << 10
	burst := envInt("FERRY_BURST", 1)
	tolerance := envFloat("FERRY_TOLERANCE", 0)
	for _, loss := range losses {
		var rates []float64
		for i := range runs {
			r := lossTransfer(t, lossCase{
				delay: delay, loss: loss, burst: burst, rate: rate, seed: int64(i + 1),
				total: total, msgSize: msg, mtu: mtu, rbuf: rbuf, timeout: 10 * time.Minute, tolerance: tolerance,
			})
			rates = append(rates, r.mbps())
			t.Logf("loss %.3f%% run %d: %.1f MB/s in %v; t3 %d, fast recoveries %d, fast rtx %d, dropped %d/%d, ssthresh %d",
				loss*100, i+1, r.mbps(), r.elapsed.Round(time.Millisecond), r.t3, r.fastRecoveries, r.fastRtx,
				r.dropped, r.sent, r.ssthreshLast)
			t.Logf("  cwnd (KiB, every %v): %s", traceEvery, traceString(r.cwndTrace, 60))
		}
		sort.Float64s(rates)
		t.Logf("LOSS %.3f%%: median %.1f MB/s of %d runs %v", loss*100, rates[len(rates)/2], runs, rates)
	}
}

func traceString(tr []uint32, limit int) string {
	var sb strings.Builder
	step := 1
	if len(tr) > limit {
		step = (len(tr) + limit - 1) / limit
	}
	for i := 0; i < len(tr); i += step {
		fmt.Fprintf(&sb, "%d ", tr[i]>>10)
	}

	return sb.String()
}

// dropDataTSNs drops the DATA packets carrying the given TSNs (counted
// from the first DATA chunk on the path), each as many times as its value.
// It runs under the path's lock.
func dropDataTSNs(times map[uint32]int) func([]byte) bool {
	var first uint32
	seen := false

	return func(b []byte) bool {
		var p packet
		if err := p.unmarshal(false, b); err != nil {
			return false
		}
		for _, c := range p.chunks {
			d, ok := c.(*chunkPayloadData)
			if !ok {
				continue
			}
			if !seen {
				first, seen = d.tsn, true
			}
			if n := times[d.tsn-first]; n > 0 {
				times[d.tsn-first] = n - 1

				return true
			}
		}

		return false
	}
}

// dropSACKs drops the packets carrying the from-th to the to-th SACK
// (counting from 1). It runs under the path's lock.
func dropSACKs(from, to int) func([]byte) bool {
	n := 0

	return func(b []byte) bool {
		var p packet
		if err := p.unmarshal(false, b); err != nil {
			return false
		}
		for _, c := range p.chunks {
			if _, ok := c.(*chunkSelectiveAck); ok {
				n++

				return n >= from && n <= to
			}
		}

		return false
	}
}

// When every SACK for a window is lost and new data waits, the loss probe
// (PTO) sends a new chunk whatever cwnd says (RFC 8985 §7.3); unpatched,
// pion's probe only woke the writer, which cwnd held back, and the T3-rtx
// timer (1 s, cwnd back to one packet) ended the stall.
func TestFerryPTOProbeWithFullCwnd(t *testing.T) {
	r := lossTransfer(t, lossCase{
		delay: 15 * time.Millisecond, total: 1 << 20, msgSize: 64 << 10, seed: 1,
		dropBack: dropSACKs(3, 3), timeout: 30 * time.Second,
	})
	t.Logf("%.1f MB/s in %v; t3 %d, fast recoveries %d",
		r.mbps(), r.elapsed.Round(time.Millisecond), r.t3, r.fastRecoveries)
	if r.t3 != 0 {
		t.Fatalf("%d T3-rtx timeouts: the loss probe did not go out", r.t3)
	}
}

// A retransmission that is lost again is found by RACK like any other
// lost packet (RFC 8985 §6.2); unpatched, pion skipped retransmitted
// chunks in RACK and the fast retransmit rules, so only the T3-rtx timer
// (at least 1 s, then the congestion window from one packet) recovered it.
func TestFerryRACKLostRetransmission(t *testing.T) {
	r := lossTransfer(t, lossCase{
		delay: 15 * time.Millisecond, total: 2 << 20, msgSize: 64 << 10, seed: 1,
		drop: dropDataTSNs(map[uint32]int{300: 2}), timeout: 30 * time.Second,
	})
	t.Logf("%.1f MB/s in %v; t3 %d, fast recoveries %d, dropped %d",
		r.mbps(), r.elapsed.Round(time.Millisecond), r.t3, r.fastRecoveries, r.dropped)
	if r.dropped != 2 {
		t.Fatalf("dropped %d packets, want 2", r.dropped)
	}
	if r.t3 != 0 {
		t.Fatalf("%d T3-rtx timeouts: the lost retransmission waited for the timer", r.t3)
	}
}

// Two losses in one window are one congestion event: fast recovery lasts
// until the highest TSN outstanding when it began is acknowledged (RFC
// 9260 §7.2.4 step 2). Unpatched, pion ended it at the highest TSN the
// triggering SACK acknowledged, so a second loss in the same window,
// reported after the first one's retransmission arrived, halved cwnd again.
func TestFerryFastRecoveryOncePerWindow(t *testing.T) {
	a, sack := handFedAssociation(t, 0, 30*time.Millisecond, 30*time.Millisecond)
	cwnd := a.CWND()
	// base+11.. arrive: the third SACK reporting base+10 missing starts fast recovery.
	for end := uint16(2); end <= 4; end++ {
		sack(9, end)
	}
	if !a.inFastRecovery || a.CWND() != cwnd/2 {
		t.Fatalf("after 3 SACKs: in fast recovery %v, cwnd %d; want true, %d", a.inFastRecovery, a.CWND(), cwnd/2)
	}
	// base+10's retransmission arrives, then base+91.. report base+90 missing.
	for end := uint16(2); end <= 5; end++ {
		sack(89, end)
	}
	if a.CWND() != cwnd/2 {
		t.Fatalf("cwnd %d after a second loss in the same window, want %d (one reduction)", a.CWND(), cwnd/2)
	}
}

// handFedAssociation is an association, with no loops running and its lock
// held until the test ends, that has sent 100 DATA chunks of 1000 bytes
// (TSNs base..base+99) with cwnd just as large, rtt ago, after a minimum
// RTT of minRTT; sack(cum, gapEnd) hands it a SACK for base+cum and the
// gap base+cum+2..base+cum+gapEnd. tolerance is its WithLossTolerance.
func handFedAssociation(t *testing.T, tolerance float64, minRTT, rtt time.Duration,
) (*Association, func(cum uint32, gapEnd uint16)) {
	t.Helper()
	c0, _, stop := newLossyLink(0, 0, 1, 0, 1)
	t.Cleanup(stop)
	a, err := createAssociationFromConfig(&Config{
		NetConn: c0, LoggerFactory: &countingLoggerFactory{}, lossTolerance: tolerance,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.lock.Lock()
	// No read or write loop runs: stop the timers and the timer loop by hand.
	t.Cleanup(func() {
		a.lock.Unlock()
		a.closeAllTimers()
		close(a.closeWriteLoopCh)
	})
	a.setState(established)
	a.setRWND(1 << 20)
	now := time.Now()
	a.rack.rackMinRTTWnd.Push(now, minRTT)
	a.rackMinRTT = minRTT
	const n = 100
	base := a.myNextTSN
	a.setCWND(n * a.MTU())
	a.ssthresh = 1 << 30
	for range n {
		c := &chunkPayloadData{userData: make([]byte, 1000), beginningFragment: true, endingFragment: true}
		c.tsn, c.since, c.nSent = a.generateNextTSN(), now.Add(-rtt), 1
		a.inflightQueue.pushNoCheck(c)
	}

	return a, func(cum uint32, gapEnd uint16) {
		t.Helper()
		err := a.handleSack(&chunkSelectiveAck{
			cumulativeTSNAck: base + cum, advertisedReceiverWindowCredit: 1 << 20,
			gapAckBlocks: []gapAckBlock{{start: 2, end: gapEnd}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// WithLossTolerance: a loss with no queue building (smoothed RTT at the
// minimum) and a small loss share is repaired without halving cwnd; with
// the RTT up (a queue), a larger share, or without the option, cwnd halves
// as RFC 9260 says.
func TestFerryLossTolerance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tolerance float64
		rtt       time.Duration
		resent    int // bytes retransmitted in the round before, of 1 MiB delivered
		halved    bool
	}{
		// RTTs of seconds: a loaded machine pausing the test must not
		// look like a queue.
		{"random loss", 0.02, 10 * time.Second, 4 << 10, false},
		{"queue building", 0.02, 20 * time.Second, 4 << 10, true},
		{"loss share above", 0.02, 10 * time.Second, 64 << 10, true},
		{"option off", 0, 10 * time.Second, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, sack := handFedAssociation(t, tc.tolerance, 10*time.Second, tc.rtt)
			a.lossTolerance.started = true
			a.lossTolerance.roundEnd = a.myNextTSN - 1
			a.lossTolerance.prevDelivered, a.lossTolerance.prevRetransmitted = 1<<20, tc.resent
			cwnd := a.CWND()
			for end := uint16(2); end <= 4; end++ {
				sack(9, end)
			}
			if halved := a.CWND() < cwnd; halved != tc.halved || a.inFastRecovery != tc.halved {
				t.Fatalf("cwnd %d -> %d, fast recovery %v; want halved %v", cwnd, a.CWND(), a.inFastRecovery, tc.halved)
			}
			if c, _ := a.inflightQueue.get(a.cumulativeTSNAckPoint + 1); c.missIndicator < 3 || !a.willRetransmitFast {
				t.Fatalf("the lost chunk is not due for fast retransmission (miss %d)", c.missIndicator)
			}
		})
	}
}
