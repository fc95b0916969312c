// Package netlab builds small networks out of Linux network namespaces for
// end-to-end tests: a "public" segment, homes behind NAT routers, firewalls,
// shaped and cut links. It runs real processes inside the namespaces and
// removes everything it created when the test ends, pass or fail.
//
// Every namespace it creates is named Prefix + "<pid>-<random>-<role>", so a
// later run can find and remove what a crashed run left behind (its pid is
// gone) without touching anything else. Interfaces are created directly
// inside those namespaces and disappear with them.
//
// The lab needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns) and the ip,
// iptables and tc commands (Debian: iproute2, iptables); the tests also use
// coturn (turnserver, turnutils_uclient, turnutils_peer), chromium and
// ping, and the path benchmark iperf3. All come from scripts/deps.sh.
//
// Two kinds of network: Internet (homes behind NAT routers on a public
// segment) and Path (two hosts through a router that adds the latency,
// loss, reordering and rate limit of a real path, with the path emulator
// of package pathemu, as the kernel has no sch_netem). Without root the tests fail, never skip.
//
// Environment for the tests: FERRY_NETLAB_BIN runs them against a built
// ferry binary instead of building one; NETLAB_LOGS=DIR keeps the output of
// every process of a failed test in DIR.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/testenv"
)

// Prefix starts the name of every namespace netlab creates.
const Prefix = "ferrylab-"

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// Errors.
var (
	ErrNotRoot = errors.New("netlab: the network lab needs root (network namespaces, iptables); run `make test` as root, as CI does")
	ErrTool    = errors.New("netlab: a required command is missing")
)

// Check reports why the lab cannot run on this machine, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	for _, tool := range []string{"ip", "iptables", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found; `make test` installs it (scripts/deps.sh: apt-get install iproute2 iptables)", ErrTool, tool)
		}
	}
	return nil
}

// Require skips the test outside the heavy tier (testenv); in it, it fails
// the test, never skips it, when the lab cannot run: CI runs as root, and a
// lab that silently does nothing proves nothing.
func Require(t testing.TB) {
	t.Helper()
	testenv.Heavy(t, "root, network namespaces and iptables")
	if err := Check(); err != nil {
		t.Fatal(err)
	}
}

// Lab owns the namespaces and processes of one test.
type Lab struct {
	t    testing.TB
	name string // Prefix + pid + random: unique per lab

	mu    sync.Mutex
	nss   []*NS
	procs []*Proc
}

// New returns an empty lab whose contents are removed when the test ends.
// It first removes what crashed earlier runs left behind.
func New(t testing.TB) *Lab {
	t.Helper()
	Require(t)
	Sweep(t.Logf)
	var r [3]byte
	_, _ = rand.Read(r[:])
	l := &Lab{t: t, name: Prefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(r[:])}
	t.Cleanup(l.close)
	return l
}

// close stops the processes (by pid), then any other process still inside
// one of our namespaces, then deletes the namespaces, which takes their
// interfaces, routes and iptables rules with them.
func (l *Lab) close() {
	l.mu.Lock()
	procs, nss := l.procs, l.nss
	l.procs, l.nss = nil, nil
	l.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
	if dir := os.Getenv("NETLAB_LOGS"); dir != "" && l.t.Failed() {
		l.saveLogs(dir, procs)
	}
	for _, ns := range nss {
		killInside(ns.Name)
	}
	for _, ns := range nss {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			l.t.Errorf("netlab: delete namespace %s: %v: %s", ns.Name, err, bytes.TrimSpace(out))
		}
	}
}

// Describe summarizes every process of the lab, for failure messages.
func (l *Lab) Describe() string {
	l.mu.Lock()
	procs := append([]*Proc(nil), l.procs...)
	l.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "--- %s\n", p.Describe())
	}
	return b.String()
}

// saveLogs writes every process's output to dir/<test>/, for CI artifacts
// and for reading more than a failure message holds.
func (l *Lab) saveLogs(dir string, procs []*Proc) {
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(l.t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for i, p := range procs {
		base := filepath.Join(dir, fmt.Sprintf("%02d-%s-%s", i, p.ns.Role, strings.ReplaceAll(p.Name, " ", "-")))
		_ = os.WriteFile(base+".stdout", []byte(strings.Join(p.Stdout.All(), "\n")+"\n"), 0o644)
		_ = os.WriteFile(base+".stderr", []byte(strings.Join(p.Stderr.All(), "\n")+"\n"), 0o644)
	}
	l.t.Logf("netlab: process logs saved in %s", dir)
}

// killInside kills the processes left in namespace name: they can only be
// ours, since the namespace is.
func killInside(name string) {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Sweep removes namespaces (and the processes in them) that an earlier
// netlab run created and could not remove because it crashed: their names
// carry the pid of a process that no longer exists. Namespaces of live
// processes, and anything not named by netlab, are left alone.
func Sweep(logf func(string, ...any)) {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := creator(e.Name())
		if !ok || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue // its creator still runs (another test binary)
		}
		killInside(e.Name())
		if err := exec.Command("ip", "netns", "del", e.Name()).Run(); err == nil && logf != nil {
			logf("netlab: removed stale namespace %s", e.Name())
		}
	}
}

// creator parses the pid out of a netlab namespace name.
func creator(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// NS is one network namespace of the lab.
type NS struct {
	lab *Lab
	// Name is the namespace's name (for `ip netns exec`).
	Name string
	// Role is the short name the test gave it ("pub", "home-a", ...).
	Role string
}

// NS creates a namespace with its loopback up.
func (l *Lab) NS(role string) *NS {
	l.t.Helper()
	ns := &NS{lab: l, Name: l.name + "-" + role, Role: role}
	if err := run("ip", "netns", "add", ns.Name); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	// The lab is IPv4. With IPv6 on, every interface that comes up gets a
	// link-local address a second or two later, after duplicate address
	// detection; Chromium takes that as a network change and fails the
	// page loads in flight with ERR_NETWORK_CHANGED.
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		ns.Sysctl("net.ipv6.conf.default.disable_ipv6", "1")
		ns.Sysctl("net.ipv6.conf.all.disable_ipv6", "1")
	}
	ns.IP("link", "set", "lo", "up")
	return ns
}

// run runs a command and returns its output in the error when it fails.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// IP runs `ip -n NS args...` and fails the test if it fails.
func (n *NS) IP(args ...string) {
	n.lab.t.Helper()
	if err := run("ip", append([]string{"-n", n.Name}, args...)...); err != nil {
		n.lab.t.Fatalf("netlab: %v", err)
	}
}

// Exec runs a command inside the namespace and returns its output.
func (n *NS) Exec(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %v: %s", n.Role, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Run runs a command inside the namespace until it exits or ctx ends, and
// returns its combined output.
func (n *NS) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, args...)...)
	cmd.Env = Env(os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %w", n.Role, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// MustExec is Exec that fails the test on error.
func (n *NS) MustExec(args ...string) string {
	n.lab.t.Helper()
	out, err := n.Exec(args...)
	if err != nil {
		n.lab.t.Fatalf("netlab: %v", err)
	}
	return out
}

// IPTables adds a rule: IPTables("-t", "nat", "-A", "POSTROUTING", ...).
func (n *NS) IPTables(args ...string) {
	n.lab.t.Helper()
	n.MustExec(append([]string{"iptables", "-w"}, args...)...)
}

// Sysctl sets a sysctl of the namespace (only net.* ones are per
// namespace).
func (n *NS) Sysctl(key, value string) {
	n.lab.t.Helper()
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := n.Do(func() error { return os.WriteFile(p, []byte(value), 0o644) }); err != nil {
		n.lab.t.Fatalf("netlab: sysctl %s=%s in %s: %v", key, value, n.Role, err)
	}
}

// Veth connects namespace a (device aDev) and b (device bDev) with a veth
// pair created directly inside them, so no name is ever taken in the host's
// namespace.
func Veth(a *NS, aDev string, b *NS, bDev string) {
	a.lab.t.Helper()
	a.IP("link", "add", "name", aDev, "type", "veth", "peer", "name", bDev, "netns", b.Name)
}

// Up sets an interface up, with addresses (CIDR notation).
func (n *NS) Up(dev string, addrs ...string) {
	n.lab.t.Helper()
	for _, a := range addrs {
		n.IP("addr", "add", a, "dev", dev)
	}
	n.IP("link", "set", dev, "up")
}

// Do runs f on an OS thread switched into the namespace. Sockets f opens
// belong to the namespace for their whole life, wherever they are used
// afterwards, so a test can dial from inside a home network.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked (and dies with this goroutine) unless it
		// is back in its original namespace, so no other goroutine ever
		// runs in ours by accident.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join(netnsDir, n.Name))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		err = f()
		if setns(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func setns(f *os.File) error {
	trap, ok := setnsTrap()
	if !ok {
		return fmt.Errorf("setns: unknown syscall number on %s", runtime.GOARCH)
	}
	_, _, e := syscall.RawSyscall(trap, f.Fd(), syscall.CLONE_NEWNET, 0)
	if e != 0 {
		return e
	}
	return nil
}

// setnsTrap is setns(2)'s number: the frozen syscall package predates it,
// and the lab is not worth a golang.org/x/sys dependency.
func setnsTrap() (uintptr, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return 308, true
	case "arm64", "riscv64", "loong64":
		return 268, true
	case "386":
		return 346, true
	case "arm":
		return 375, true
	case "ppc64", "ppc64le":
		return 350, true
	case "s390x":
		return 339, true
	}
	return 0, false
}

// SetLink sets a device up or down: the way to cut a cable.
func (n *NS) SetLink(dev string, up bool) {
	n.lab.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	n.IP("link", "set", dev, state)
}

// WaitLink waits until dev reports the operational state "UP" (after
// SetLink(dev, true) the kernel needs a moment for carrier).
func (n *NS) WaitLink(dev string, timeout time.Duration) error {
	return n.waitLinks(timeout, func(out string) []string {
		if strings.Contains(out, "state UP") {
			return nil
		}
		return []string{dev}
	}, dev)
}

// Settle waits until every interface of the namespace that is set up
// reports the operational state UP. The kernel reports a new carrier up to
// a second late (linkwatch); a browser started before that sees a network
// change and fails its page loads with ERR_NETWORK_CHANGED.
func (n *NS) Settle(timeout time.Duration) error {
	return n.waitLinks(timeout, unsettledLinks)
}

// waitLinks polls `ip -o link show [dev]` in the namespace until pending
// names no link, or fails after timeout naming those it still does.
func (n *NS) waitLinks(timeout time.Duration, pending func(out string) []string, dev ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := exec.Command("ip", append([]string{"-n", n.Name, "-o", "link", "show"}, dev...)...).Output()
		var left []string
		if err == nil {
			left = pending(string(out))
		} else {
			left = append([]string{fmt.Sprintf("(ip: %v)", err)}, dev...)
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netlab: in %s, %s not up after %s: %s", n.Role, strings.Join(left, ", "), timeout, out)
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel's state, bounded by the deadline
	}
}

// unsettledLinks names the links of `ip -o link show` output that are set
// up but whose operational state is neither UP nor UNKNOWN (loopback's).
func unsettledLinks(out string) []string {
	var names []string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		flags := strings.Split(strings.Trim(f[2], "<>"), ",")
		if !slices.Contains(flags, "UP") {
			continue // set down on purpose
		}
		state := ""
		if i := slices.Index(f, "state"); i >= 0 && i+1 < len(f) {
			state = f[i+1]
		}
		if state != "UP" && state != "UNKNOWN" {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			names = append(names, name)
		}
	}
	return names
}

// ListenPacket opens a packet socket inside the namespace.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// DialContext dials from inside the namespace.
func (n *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient is an HTTP client whose connections start inside the
// namespace (for the signaling client in tests).
func (n *NS) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: n.DialContext}}
}
