package netlab_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/netlab"
)

// crocModule is croc, the anchor the path benchmark compares ferry with:
// built from its module at a pinned version (the newest the module proxy
// here serves) into a cache folder, never in `make test`.
const crocModule = "github.com/schollz/croc/v10@v10.7.0"

// BenchmarkPaths measures, on each emulated path and in the same run, one
// iperf3 TCP flow (the ceiling), croc through its relay, and ferry Go → Go
// direct and through its bundled TURN relay: MB/s of the data phase, CPU
// seconds per GB and peak RSS of each side, medians of several runs, and
// ferry's ratio to croc and to iperf3. It is a benchmark, not a test: it
// asserts nothing and is not part of `make test`. Run it with
// `make bench-paths`, or:
//
//	FERRY_TEST_HEAVY=1 go test ./internal/netlab -run '^$' -bench Paths -benchtime 1x -timeout 60m
//
// Environment: NETLAB_BENCH_PATHS (comma-separated names from
// netlab.StandardPaths, default "lan,30ms,30ms-loss0.2"), NETLAB_BENCH_MIB
// (file size, default 256, the issue's: a shorter transfer measures
// mostly slow start and set-up at 30 ms; 64 when a browser tool runs),
// NETLAB_BENCH_RUNS (default 3),
// NETLAB_BENCH_TOOLS (default "iperf3,croc,ferry,ferry-relay"; also
// "ferry-relay-send": through the relay with only the sender relay-only
// ("ferry-relay" relays both peers, each packet crossing the relay twice);
// "ferry-lt": ferry with --loss-tolerance 0.02; "ferry-sctp": ferry with
// --no-quic, over the data channel; and the browser tools of
// bench_browser_test.go: "chromium-dc", the plain Chromium data channel
// the browser rows are compared with in the "x dc" column, "chromium",
// "chromium-relay", "chromium-go" and "go-chromium"). A browser side's
// CPU and RSS are those of Chromium's whole process tree.
// "ferry-base" is ferry from the binary NETLAB_BENCH_BASE (another build,
// e.g. main's), for a before/after in the same run, interleaved;
// "ferry-base-relay", "ferry-base-sctp" and "ferry-base-lt" the same for
// the other Go tools; NETLAB_BENCH_BASE_ENV (space-separated KEY=value)
// adds to the base's environment, e.g. GOGC=100 with the same binary.
// NETLAB_BENCH_SERVER is a ferry binary for the lab's server and its TURN
// relay (default: the working tree's), for a before/after of the server.
// NETLAB_BENCH_PROFILE=<folder> keeps, for each Go peer run, both peers'
// CPU profiles (FERRY_CPUPROFILE), their logs (the sender's has a "quic"
// line a second: window, RTT, losses) and each namespace's nstat counters.
func BenchmarkPaths(b *testing.B) {
	paths := benchEnv("NETLAB_BENCH_PATHS", "lan,30ms,30ms-loss0.2")
	tools := benchEnv("NETLAB_BENCH_TOOLS", "iperf3,croc,ferry,ferry-relay")
	// Browsers move a few MB/s here: 256 MiB would take minutes a run.
	// 64 MiB, as the issue measured them: a page's time includes its
	// set-up (some 5 s at 30 ms on two loaded cores, its stripes' DTLS
	// handshakes among it), which was over half of a 16 MiB run (30 ms:
	// 1.15x the plain data channel at 16 MiB, 1.67x at 64).
	defMiB := "256"
	if slices.ContainsFunc(tools, func(t string) bool { return strings.Contains(t, "chromium") }) {
		defMiB = "64"
	}
	mib, err := strconv.Atoi(benchEnv("NETLAB_BENCH_MIB", defMiB)[0])
	if err != nil || mib <= 0 {
		b.Fatalf("NETLAB_BENCH_MIB: %v", err)
	}
	runs, err := strconv.Atoi(benchEnv("NETLAB_BENCH_RUNS", "3")[0])
	if err != nil || runs <= 0 {
		b.Fatalf("NETLAB_BENCH_RUNS: %v", err)
	}
	byName := map[string]netlab.PathSpec{}
	for _, s := range netlab.StandardPaths() {
		byName[s.Name] = s
	}
	var crocBin string
	if slices.Contains(tools, "croc") {
		crocBin = buildCroc(b)
	}
	for _, name := range paths {
		spec, ok := byName[name]
		if !ok {
			b.Fatalf("no path %q", name)
		}
		b.Run(name, func(b *testing.B) {
			bp := newBenchPath(b, spec, crocBin, int64(mib)<<20)
			res := map[string][]measure{}
			for run := range runs {
				for _, tool := range tools {
					m, err := bp.measure(tool)
					if err != nil {
						// What was measured so far is still worth seeing.
						fmt.Print(table(spec, mib, runs, tools, res))
						b.Fatalf("%s run %d: %v", tool, run+1, err)
					}
					res[tool] = append(res[tool], m)
				}
			}
			fmt.Print(table(spec, mib, runs, tools, res))
			printIdleRSS(b, tools)
		})
	}
}

// printIdleRSS prints the peak RSS of an idle `ferry version` from each
// ferry binary the tools ran: the binary's own pages, which every ferry
// row's RSS includes. How many of them a process maps depends on how the
// file came into the page cache (the kernel maps large folios whole):
// 12–29 MiB for the same binary on this machine's 6.18 kernel.
func printIdleRSS(b *testing.B, tools []string) {
	bins := map[string]string{"ferry": ferryBin}
	if slices.ContainsFunc(tools, func(t string) bool { return strings.HasPrefix(t, "ferry-base") }) {
		bins["ferry-base"] = os.Getenv("NETLAB_BENCH_BASE")
	}
	for _, name := range slices.Sorted(maps.Keys(bins)) {
		cmd := exec.Command(bins[name], "version")
		if err := cmd.Run(); err != nil {
			b.Logf("%s version: %v", name, err)
			continue
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			fmt.Printf("(%s: an idle `ferry version` peaks at %d MiB, the binary's pages as cached now)\n", name, ru.Maxrss>>10)
		}
	}
}

func benchEnv(key, def string) []string {
	v := os.Getenv(key)
	if v == "" {
		v = def
	}
	return strings.Split(v, ",")
}

// buildCroc builds croc into the user's cache folder once per version.
func buildCroc(b *testing.B) string {
	b.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	_, version, _ := strings.Cut(crocModule, "@")
	dir := filepath.Join(cache, "ferry-bench", "croc-"+version)
	bin := filepath.Join(dir, "croc")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", crocModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir() // outside our module: croc's own go.mod decides
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go install %s: %v\n%s", crocModule, err, out)
	}
	return bin
}

// measure is one transfer.
type measure struct {
	mbps             float64 // MB (10^6 bytes) per second of the data phase
	sendCPU, recvCPU time.Duration
	sendRSS, recvRSS int64
}

// benchPath is one path with its servers: ferry serve (signaling and TURN)
// and croc's relay on S.
type benchPath struct {
	b    *testing.B
	lab  *netlab.Lab
	path *netlab.Path
	srv  *netlab.Server
	croc string
	file string
	sum  [32]byte
	size int64
	seq  int
	// profile is NETLAB_BENCH_PROFILE: the folder for per-run profiles,
	// logs and counters ("" for none).
	profile string
}

func newBenchPath(b *testing.B, spec netlab.PathSpec, croc string, size int64) *benchPath {
	b.Helper()
	l := netlab.New(b)
	p := l.Path(spec, emuBin)
	bp := &benchPath{b: b, lab: l, path: p, croc: croc, size: size, profile: os.Getenv("NETLAB_BENCH_PROFILE")}
	// Quiet: debug logging costs the relay CPU the transfer should get.
	var env []string
	if dir := bp.profile; dir != "" {
		// NETLAB_BENCH_PROFILE=dir: the ferry server's CPU profile too,
		// covering the whole path (written at its exit).
		env = append(env, "FERRY_CPUPROFILE="+filepath.Join(dir, spec.Name+"-serve.pprof"))
	}
	// NETLAB_BENCH_SERVER: another ferry binary for the server (and its
	// relay), to compare servers in runs otherwise alike.
	srvBin := cmp.Or(os.Getenv("NETLAB_BENCH_SERVER"), ferryBin)
	bp.srv = p.ServeEnv(env, srvBin, "--log-level", "info")
	var err error
	if bp.file, bp.sum, err = netlab.RandomFile(b.TempDir(), "payload.bin", size); err != nil {
		b.Fatal(err)
	}
	if croc != "" {
		relay := p.S.Start("croc relay", netlab.Env(b.TempDir()), croc, "relay", "--host", p.SIP)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// It logs "starting TCP server on ..." for each of its 5 ports.
		if err := waitOutput(ctx, relay, "9013"); err != nil {
			b.Fatalf("croc relay: %v\n%s", err, relay.Describe())
		}
	}
	return bp
}

func (bp *benchPath) measure(tool string) (measure, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bp.seq++
	if dir := bp.profile; dir != "" && bp.path.Emulator != nil {
		defer bp.emulatorDelta(ctx, filepath.Join(dir, fmt.Sprintf("%s-%d-%s.emu", bp.path.Spec.Name, bp.seq, tool)))()
	}
	return bp.run(ctx, tool)
}

// emulatorDelta returns a func that writes to file what the emulator saw
// since: packets received and dropped per queue, and the kernel's own
// drops (the emulator falling behind).
func (bp *benchPath) emulatorDelta(ctx context.Context, file string) func() {
	before, _ := bp.path.EmulatorStats(ctx)
	kbefore, _ := bp.path.KernelQueueDrops()
	return func() {
		after, err := bp.path.EmulatorStats(ctx)
		kafter, _ := bp.path.KernelQueueDrops()
		var sb strings.Builder
		fmt.Fprintf(&sb, "kernel drops %d (err %v)\n", kafter-kbefore, err)
		for q, a := range after {
			b := before[q]
			if a.Received > b.Received {
				fmt.Fprintf(&sb, "queue %d: received %d dropped %d\n", q, a.Received-b.Received, a.Dropped-b.Dropped)
			}
		}
		_ = os.WriteFile(file, []byte(sb.String()), 0o644)
	}
}

func (bp *benchPath) run(ctx context.Context, tool string) (measure, error) {
	if v, ok := ferryTools[tool]; ok {
		return bp.ferry(ctx, ferryBin, v)
	}
	// "ferry-base…": a ferry variant run with NETLAB_BENCH_BASE.
	if rest, ok := strings.CutPrefix(tool, "ferry-base"); ok {
		v, ok := ferryTools["ferry"+rest]
		if !ok {
			return measure{}, fmt.Errorf("unknown tool %q", tool)
		}
		base := os.Getenv("NETLAB_BENCH_BASE")
		if base == "" {
			return measure{}, errors.New(tool + " needs NETLAB_BENCH_BASE, a ferry binary to compare with")
		}
		v.env = strings.Fields(os.Getenv("NETLAB_BENCH_BASE_ENV"))
		return bp.ferry(ctx, base, v)
	}
	switch tool {
	case "iperf3":
		return bp.iperf(ctx)
	case "croc":
		return bp.crocRun(ctx)
	case "chromium-dc":
		return bp.dcRun(ctx)
	case "chromium":
		return bp.pagesRun(ctx, false)
	case "chromium-relay":
		return bp.pagesRun(ctx, true)
	case "chromium-go":
		return bp.pageToGo(ctx)
	case "go-chromium":
		return bp.goToPage(ctx)
	}
	return measure{}, fmt.Errorf("unknown tool %q", tool)
}

// waitOutput waits until p prints a line containing substr, on stdout or
// stderr (croc writes some of its messages to one, some to the other).
func waitOutput(ctx context.Context, p *netlab.Proc, substr string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	for _, l := range []*netlab.Lines{p.Stdout, p.Stderr} {
		go func() {
			_, _, err := l.Wait(ctx, 0, func(s string) bool { return strings.Contains(s, substr) })
			errc <- err
		}()
	}
	err := <-errc
	if err == nil {
		return nil
	}
	return <-errc // the other stream's answer
}

// usage fills in both sides' CPU time and peak RSS.
func usage(m *measure, send, recv *netlab.Proc) {
	m.sendCPU, m.sendRSS, _ = send.Usage()
	m.recvCPU, m.recvRSS, _ = recv.Usage()
}

func (bp *benchPath) iperf(ctx context.Context) (measure, error) {
	p := bp.path
	port := strconv.Itoa(5200 + bp.seq)
	srv := p.B.Start("iperf3 server", netlab.Env(bp.b.TempDir()), "iperf3", "-s", "-1", "--forceflush", "-B", p.BIP, "-p", port)
	if _, _, err := srv.Stdout.Wait(ctx, 0, func(s string) bool { return strings.Contains(s, "Server listening") }); err != nil {
		return measure{}, fmt.Errorf("iperf3 server: %w\n%s", err, srv.Describe())
	}
	cli := p.A.Start("iperf3 client", netlab.Env(bp.b.TempDir()), "iperf3", "-c", p.BIP, "-p", port, "-n", strconv.FormatInt(bp.size, 10), "-J")
	if err := cli.Wait(ctx); err != nil {
		return measure{}, fmt.Errorf("iperf3 client: %w\n%s", err, cli.Describe())
	}
	if err := srv.Wait(ctx); err != nil {
		return measure{}, fmt.Errorf("iperf3 server: %w\n%s", err, srv.Describe())
	}
	var out struct {
		End struct {
			SumReceived struct {
				Bytes   float64 `json:"bytes"`
				Seconds float64 `json:"seconds"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(strings.Join(cli.Stdout.All(), "\n")), &out); err != nil || out.End.SumReceived.Seconds == 0 {
		return measure{}, fmt.Errorf("iperf3 output: %v\n%s", err, cli.Describe())
	}
	m := measure{mbps: out.End.SumReceived.Bytes / 1e6 / out.End.SumReceived.Seconds}
	usage(&m, cli, srv)
	return m, nil
}

// crocRun sends the file with croc through its relay on S. The data phase
// runs from the receiver's "Receiving (<-" line (keys agreed, first data
// on its way) to its exit (after it checked the hash).
func (bp *benchPath) crocRun(ctx context.Context) (measure, error) {
	p := bp.path
	code := fmt.Sprintf("ferrybench-%d-%d", os.Getpid(), bp.seq)
	relay := p.SIP + ":9009"
	home := bp.b.TempDir()
	send := p.A.Start("croc send", netlab.Env(home, "CROC_SECRET="+code), bp.croc, "--yes", "--relay", relay, "send", "--no-local", bp.file)
	// The sender has registered with the relay once it prints the code.
	if err := waitOutput(ctx, send, "Code is"); err != nil {
		return measure{}, fmt.Errorf("croc send: %w\n%s", err, send.Describe())
	}
	out := bp.b.TempDir()
	defer os.RemoveAll(out)
	recv := p.B.Start("croc receive", netlab.Env(home, "CROC_SECRET="+code), bp.croc, "--yes", "--overwrite", "--relay", relay, "--out", out)
	var start time.Time
	started := make(chan struct{})
	go func() {
		defer close(started)
		if waitOutput(ctx, recv, "Receiving (<-") == nil {
			start = time.Now()
		}
	}()
	if err := recv.Wait(ctx); err != nil {
		return measure{}, fmt.Errorf("croc receive: %w\n%s", err, recv.Describe())
	}
	end := time.Now()
	<-started
	if err := send.Wait(ctx); err != nil {
		return measure{}, fmt.Errorf("croc send: %w\n%s", err, send.Describe())
	}
	if start.IsZero() {
		return measure{}, errors.New("croc receive never said it was receiving\n" + recv.Describe())
	}
	got, err := netlab.FileSum(filepath.Join(out, filepath.Base(bp.file)))
	if err != nil || got != bp.sum {
		return measure{}, fmt.Errorf("croc's received file differs (%v)", err)
	}
	m := measure{mbps: float64(bp.size) / 1e6 / end.Sub(start).Seconds()}
	usage(&m, send, recv)
	return m, nil
}

// ferryVariant is how a Go tool runs ferry: through the relay, and with
// which flags on both peers.
type ferryVariant struct {
	relay bool
	// senderOnly: only the sender is relay-only, so the relay reaches the
	// receiver directly, as when one peer alone cannot be reached (each
	// packet crosses the relay once); else both are (twice).
	senderOnly bool
	flags      []string
	env        []string // both peers' extra environment
}

// ferryTools are the Go tools by name; "ferry-base" followed by a name's
// suffix ("", "-relay", …) runs the same variant with NETLAB_BENCH_BASE.
var ferryTools = map[string]ferryVariant{
	"ferry":            {},
	"ferry-relay":      {relay: true},
	"ferry-relay-send": {relay: true, senderOnly: true},
	"ferry-sctp":       {flags: []string{"--no-quic"}},
	"ferry-lt":         {flags: []string{"--loss-tolerance", "0.02"}},
}

func (bp *benchPath) ferry(ctx context.Context, bin string, v ferryVariant) (measure, error) {
	relay, flags := v.relay, v.flags
	p := bp.path
	srvCPU, _ := bp.srv.CPU()
	emuCPU := emulatorCPU(p)
	spec := netlab.TransferSpec{Bin: bin, Server: bp.srv.URL, From: p.A, To: p.B, File: bp.file, Sum: bp.sum,
		SendArgs: slices.Clone(flags), RecvArgs: slices.Clone(flags),
		SendEnv: slices.Clone(v.env), RecvEnv: slices.Clone(v.env)}
	want := "direct"
	if relay {
		spec.SendArgs = append(spec.SendArgs, "--relay-only")
		if !v.senderOnly {
			spec.RecvArgs = append(spec.RecvArgs, "--relay-only")
		}
		want = "relay"
	}
	if dir := bp.profile; dir != "" {
		name := fmt.Sprintf("%s-%s%s-%d", bp.path.Spec.Name, want, strings.Join(flags, ""), bp.seq)
		spec.SendEnv = append(spec.SendEnv, "FERRY_CPUPROFILE="+filepath.Join(dir, name+"-send.pprof"))
		spec.RecvEnv = append(spec.RecvEnv, "FERRY_CPUPROFILE="+filepath.Join(dir, name+"-recv.pprof"))
	}
	tr := bp.lab.StartTransfer(ctx, spec)
	defer os.RemoveAll(tr.Out)
	res, err := tr.Finish(ctx)
	if dir := bp.profile; dir != "" {
		var sb strings.Builder
		for _, ns := range []*netlab.NS{p.A, p.R, p.B, p.S} {
			out, _ := ns.Exec("nstat", "-a")
			sb.WriteString("== " + ns.Name + "\n" + out)
		}
		sb.WriteString("== recv stderr\n" + strings.Join(tr.Receiver.Stderr.All(), "\n"))
		sb.WriteString("== send stderr\n" + strings.Join(tr.Sender.Stderr.All(), "\n"))
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.stats", p.Spec.Name, bp.seq)), []byte(sb.String()), 0o644)
	}
	if err != nil {
		return measure{}, err
	}
	if res.Path != want {
		return measure{}, fmt.Errorf("path %q, want %q", res.Path, want)
	}
	m := measure{mbps: res.MBps}
	usage(&m, tr.Sender, tr.Receiver)
	// The relay's and the emulator's own CPU, apart from the peers'
	// (logged, not tabled): a relayed packet crosses the emulator twice.
	gb := float64(bp.size) / 1e9
	if after, ok := bp.srv.CPU(); ok && relay {
		cpu := after - srvCPU
		bp.b.Logf("%s ferry-relay run %d: relay server CPU %v, %.1f s/GB", p.Spec.Name, bp.seq, cpu, cpu.Seconds()/gb)
	}
	if p.Emulator != nil {
		cpu := emulatorCPU(p) - emuCPU
		bp.b.Logf("%s ferry relay=%v run %d: emulator CPU %v, %.1f s/GB", p.Spec.Name, relay, bp.seq, cpu, cpu.Seconds()/gb)
	}
	return m, nil
}

// emulatorCPU is the path emulator's CPU time so far (0 without one).
func emulatorCPU(p *netlab.Path) time.Duration {
	if p.Emulator == nil {
		return 0
	}
	cpu, _ := p.Emulator.CPU()
	return cpu
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// table prints one path's results.
func table(spec netlab.PathSpec, mib, runs int, tools []string, res map[string][]measure) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n## path %s: %v RTT, %.1f%% loss each way, %d Mbit/s (0: no limit), %d MiB, median of %d runs\n",
		spec.Name, spec.RTT, 100*spec.Loss, spec.RateMbit, mib, runs)
	fmt.Fprintf(&sb, "| %-14s | %8s | %-21s | %9s | %9s | %8s | %8s | %7s | %7s | %7s |\n",
		"tool", "MB/s", "runs", "send s/GB", "recv s/GB", "send MiB", "recv MiB", "x croc", "x iperf", "x dc")
	med := func(tool string) (float64, bool) {
		ms := res[tool]
		if len(ms) == 0 {
			return 0, false
		}
		var v []float64
		for _, m := range ms {
			v = append(v, m.mbps)
		}
		return median(v), true
	}
	croc, hasCroc := med("croc")
	iperf, hasIperf := med("iperf3")
	dc, hasDC := med("chromium-dc")
	gb := float64(int64(mib)<<20) / 1e9
	for _, tool := range tools {
		ms := res[tool]
		if len(ms) == 0 {
			continue
		}
		var mbps []float64
		var scpu, rcpu []float64
		var srss, rrss []int64
		var each []string
		for _, m := range ms {
			mbps = append(mbps, m.mbps)
			each = append(each, fmt.Sprintf("%.1f", m.mbps))
			scpu = append(scpu, m.sendCPU.Seconds()/gb)
			rcpu = append(rcpu, m.recvCPU.Seconds()/gb)
			srss = append(srss, m.sendRSS>>20)
			rrss = append(rrss, m.recvRSS>>20)
		}
		v := median(mbps)
		ratio := func(ok bool, base float64) string {
			if !ok || base == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", v/base)
		}
		// The browser rows' targets are against the plain data channel
		// between the same two Chromiums.
		xdc := "-"
		if strings.Contains(tool, "chromium") {
			xdc = ratio(hasDC, dc)
		}
		fmt.Fprintf(&sb, "| %-14s | %8.1f | %-21s | %9.1f | %9.1f | %8d | %8d | %7s | %7s | %7s |\n",
			tool, v, strings.Join(each, " "), median(scpu), median(rcpu), median(srss), median(rrss), ratio(hasCroc, croc), ratio(hasIperf, iperf), xdc)
	}
	return sb.String()
}
