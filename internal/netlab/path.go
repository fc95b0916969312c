package netlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/netlab/pathemu"
)

// PathSpec is a network path between two hosts, A and B, through a router:
// how far apart they are, how lossy and how fast the path is. The kernel
// has no sch_netem, so the router runs the path emulator (package pathemu)
// for delay, loss and reordering, and tc's tbf for the rate.
type PathSpec struct {
	// Name names the path in logs and benchmark tables ("30ms-loss0.2").
	Name string
	// RTT is the round trip time between A and B added by the path.
	RTT time.Duration
	// Loss is the share of packets lost each way between A and B.
	Loss float64
	// Reorder is the share of packets each way that are held ReorderGap
	// longer than the others (so the next ones overtake them).
	Reorder    float64
	ReorderGap time.Duration
	// RateMbit limits each direction of the path to so many Mbit/s
	// (tbf on the router), with a drop-tail queue of QueueDelay at that
	// rate (30 ms when 0). 0: no limit.
	RateMbit   int
	QueueDelay time.Duration
	// Emulate runs the emulator even when it has no delay, loss or
	// reordering to add, to measure its own ceiling.
	Emulate bool
}

// The paths of issue 13's lab: the cases every transfer is measured on.
var (
	PathLAN       = PathSpec{Name: "lan"}
	Path30ms      = PathSpec{Name: "30ms", RTT: 30 * time.Millisecond}
	Path30msLoss2 = PathSpec{Name: "30ms-loss0.2", RTT: 30 * time.Millisecond, Loss: 0.002}
	Path30msLoss1 = PathSpec{Name: "30ms-loss1", RTT: 30 * time.Millisecond, Loss: 0.01}
	Path100ms     = PathSpec{Name: "100ms", RTT: 100 * time.Millisecond}
	Path100Mbit   = PathSpec{Name: "30ms-100mbit", RTT: 30 * time.Millisecond, RateMbit: 100}
	Path30msReord = PathSpec{Name: "30ms-reorder1", RTT: 30 * time.Millisecond, Reorder: 0.01, ReorderGap: 2 * time.Millisecond}
	// PathEmuOnly is the LAN through the emulator: its own ceiling.
	PathEmuOnly = PathSpec{Name: "lan-emulator", Emulate: true}
)

// StandardPaths are the paths by name.
func StandardPaths() []PathSpec {
	return []PathSpec{PathLAN, PathEmuOnly, Path30ms, Path30msLoss2, Path30msLoss1, Path100ms, Path100Mbit, Path30msReord}
}

// Addresses of the path lab: A, B and the server S each on their own link
// to the router R (198.18.0.0/15 is benchmarking space, which ferry's TURN
// relay treats as the internet).
const (
	PathAIP      = "198.18.1.2"
	PathBIP      = "198.18.2.2"
	PathServerIP = "198.18.3.2"
)

// Path is a built path: hosts A and B, the server's host S, all three
// linked to the router R. The path's delay and loss are split evenly
// between A's and B's links, S's link adds none: S sits halfway, so a
// relayed transfer (A → S → B) sees the same delay and loss as a direct
// one.
type Path struct {
	Spec          PathSpec
	A, B, S, R    *NS
	AIP, BIP, SIP string
	// Emulator is the emulator process (nil without one).
	Emulator *Proc
}

// legs are the router's links: device on R, host namespace, subnet.
var pathLegs = []struct{ dev, sub string }{{"toa", "1"}, {"tob", "2"}, {"tos", "3"}}

// Path builds the path; emu is the emulator's binary (BuildEmulator).
func (l *Lab) Path(spec PathSpec, emu string) *Path {
	t := l.t
	t.Helper()
	p := &Path{Spec: spec, R: l.NS("path-r"), AIP: PathAIP, BIP: PathBIP, SIP: PathServerIP}
	hosts := []**NS{&p.A, &p.B, &p.S}
	for i, leg := range pathLegs {
		ns := l.NS("path-" + leg.dev[2:])
		*hosts[i] = ns
		Veth(p.R, leg.dev, ns, hostDev)
		p.R.Up(leg.dev, "198.18."+leg.sub+".1/24")
		ns.Up(hostDev, "198.18."+leg.sub+".2/24")
		ns.IP("route", "add", "default", "via", "198.18."+leg.sub+".1")
	}
	p.R.Sysctl("net.ipv4.ip_forward", "1")
	if spec.RTT > 0 || spec.Loss > 0 || spec.Reorder > 0 || spec.Emulate {
		p.startEmulator(emu)
	}
	if spec.RateMbit > 0 {
		qd := spec.QueueDelay
		if qd == 0 {
			qd = 30 * time.Millisecond
		}
		bytesPerSec := float64(spec.RateMbit) * 1e6 / 8
		limit := int(bytesPerSec * qd.Seconds())
		for _, dev := range []string{"toa", "tob"} {
			// burst: 32 KiB, enough for the rate at the kernel's timer
			// granularity without letting long bursts through.
			p.R.MustExec("tc", "qdisc", "add", "dev", dev, "root", "tbf",
				"rate", strconv.Itoa(spec.RateMbit)+"mbit", "burst", "32kb", "limit", strconv.Itoa(limit))
		}
	}
	return p
}

// leg is one link's share of the path: one-way delay, loss and reorder.
type leg struct {
	delay         time.Duration
	loss, reorder float64
}

func (p *Path) legs() []leg {
	s := p.Spec
	// Two links in a row, each with loss x, lose 1-(1-x)² of the packets.
	half := func(v float64) float64 { return 1 - math.Sqrt(1-v) }
	l := leg{delay: s.RTT / 4, loss: half(s.Loss), reorder: half(s.Reorder)}
	return []leg{l, l, {}}
}

// queueConfigs are the emulator's queues: one per (in, out) pair of the
// router's links, numbered 3*in + out.
func (p *Path) queueConfigs() []pathemu.Queue {
	legs := p.legs()
	var qs []pathemu.Queue
	for i := range pathLegs {
		for o := range pathLegs {
			if i == o {
				continue
			}
			in, out := legs[i], legs[o]
			qs = append(qs, pathemu.Queue{
				Num:        uint16(3*i + o),
				Delay:      in.delay + out.delay,
				Loss:       1 - (1-in.loss)*(1-out.loss),
				Reorder:    1 - (1-in.reorder)*(1-out.reorder),
				ReorderGap: p.Spec.ReorderGap,
			})
		}
	}
	return qs
}

func (p *Path) startEmulator(bin string) {
	t := p.R.lab.t
	t.Helper()
	argv := []string{bin}
	qs := p.queueConfigs()
	for _, q := range qs {
		argv = append(argv, "-queue", fmt.Sprintf("%d,delay=%s,loss=%g,reorder=%g,gap=%s", q.Num, q.Delay, q.Loss, q.Reorder, q.ReorderGap))
	}
	p.Emulator = p.R.Start("pathemu", Env(t.TempDir()), argv...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := p.Emulator.Stdout.Wait(ctx, 0, func(s string) bool { return strings.Contains(s, `"ready":true`) }); err != nil {
		t.Fatalf("netlab: the path emulator did not start: %v\n%s", err, p.Emulator.Describe())
	}
	// Only now send packets its way: without a listener (and without
	// --queue-bypass) the kernel drops them. The filter table's FORWARD
	// chain is empty here, so mangle is as good a place as any.
	for _, q := range qs {
		p.R.IPTables("-t", "mangle", "-A", "FORWARD", "-i", pathLegs[q.Num/3].dev, "-o", pathLegs[q.Num%3].dev,
			"-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(q.Num)))
	}
}

// Serve starts `ferry serve` (with its TURN relay) on S.
func (p *Path) Serve(bin string, args ...string) *Server {
	p.R.lab.t.Helper()
	return serve(p.S, p.SIP, nil, bin, args...)
}

// ServeEnv is Serve with env added to the server's environment (e.g.
// FERRY_CPUPROFILE).
func (p *Path) ServeEnv(env []string, bin string, args ...string) *Server {
	p.R.lab.t.Helper()
	return serve(p.S, p.SIP, env, bin, args...)
}

// ErrNoEmulator means the path has no emulator to ask.
var ErrNoEmulator = errors.New("netlab: the path has no emulator")

// EmulatorStats asks the emulator for its counters, by queue: the queue of
// packets from A to B is PathQueue(0, 1), from B to A PathQueue(1, 0).
func (p *Path) EmulatorStats(ctx context.Context) (map[uint16]pathemu.Stats, error) {
	if p.Emulator == nil {
		return nil, ErrNoEmulator
	}
	from := len(p.Emulator.Stdout.All())
	p.Emulator.Signal(syscall.SIGUSR1)
	line, _, err := p.Emulator.Stdout.Wait(ctx, from, func(s string) bool { return strings.HasPrefix(s, `{"stats"`) })
	if err != nil {
		return nil, fmt.Errorf("netlab: emulator stats: %w\n%s", err, p.Emulator.Describe())
	}
	var v struct{ Stats []pathemu.Stats }
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		return nil, fmt.Errorf("netlab: emulator stats %q: %w", line, err)
	}
	out := map[uint16]pathemu.Stats{}
	for _, s := range v.Stats {
		out[s.Queue] = s
	}
	return out, nil
}

// PathQueue is the emulator's queue for packets from leg in to leg out
// (0 A, 1 B, 2 S).
func PathQueue(in, out int) uint16 { return uint16(3*in + out) }

// KernelQueueDrops is what the kernel dropped itself in the emulator's
// queues (queue full, or its socket's buffer): not the emulated loss, a
// sign the emulator could not keep up.
func (p *Path) KernelQueueDrops() (int64, error) {
	out, err := p.R.Exec("cat", "/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		return 0, err
	}
	return parseQueueDrops(out), nil
}

// parseQueueDrops sums the queue_dropped and user_dropped columns of
// /proc/net/netfilter/nfnetlink_queue: queue, portid, waiting, copy
// mode, copy range, queue_dropped, user_dropped, last id, 1.
func parseQueueDrops(out string) int64 {
	var n int64
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		q, _ := strconv.ParseInt(f[5], 10, 64)
		u, _ := strconv.ParseInt(f[6], 10, 64)
		n += q + u
	}
	return n
}

// Ping is what ping measured.
type Ping struct {
	Sent, Received int
	// Min, Avg, Max round trip times.
	Min, Avg, Max time.Duration
}

// Loss is the share of pings that got no answer.
func (p Ping) Loss() float64 {
	if p.Sent == 0 {
		return 0
	}
	return 1 - float64(p.Received)/float64(p.Sent)
}

// Ping pings B from A count times, interval apart.
func (p *Path) Ping(ctx context.Context, count int, interval time.Duration) (Ping, error) {
	out, err := p.A.Run(ctx, "ping", "-q", "-n", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), p.BIP)
	// ping exits 1 when some answers are missing: the summary says how many.
	r, perr := ParsePing(out)
	if perr != nil {
		return r, fmt.Errorf("%w (%v)", perr, err)
	}
	return r, nil
}

// ErrPingOutput means ping printed no summary.
var ErrPingOutput = errors.New("netlab: no ping summary")

var (
	rePingCount = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)
	rePingRTT   = regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/[\d.]+ ms`)
)

// ParsePing reads iputils ping's summary.
func ParsePing(out string) (Ping, error) {
	var r Ping
	c := rePingCount.FindStringSubmatch(out)
	if c == nil {
		return r, fmt.Errorf("%w: %q", ErrPingOutput, out)
	}
	r.Sent, _ = strconv.Atoi(c[1])
	r.Received, _ = strconv.Atoi(c[2])
	if m := rePingRTT.FindStringSubmatch(out); m != nil {
		ms := func(s string) time.Duration {
			v, _ := strconv.ParseFloat(s, 64)
			return time.Duration(v * float64(time.Millisecond))
		}
		r.Min, r.Avg, r.Max = ms(m[1]), ms(m[2]), ms(m[3])
	}
	return r, nil
}
