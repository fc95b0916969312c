package turn_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/netlab"
	"github.com/ferrydev/ferry/internal/turntest"
	"github.com/ferrydev/ferry/turn"
	"github.com/pion/stun/v3"
	pionturn "github.com/pion/turn/v5"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type recorder struct {
	mu     sync.Mutex
	events []turn.Event
}

func (r *recorder) observe(e turn.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) count(kind string) int {
	return r.countWhere(func(e turn.Event) bool { return e.Kind == kind })
}

func (r *recorder) countWhere(f func(turn.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if f(e) {
			n++
		}
	}
	return n
}

const secret = "test-secret"

func start(t testing.TB, mod func(*turn.Config)) (*turn.Server, *fakeClock, *recorder) {
	t.Helper()
	clk := &fakeClock{t: time.Now()}
	rec := &recorder{}
	cfg := turn.Config{
		ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1",
		Secret: secret, Now: clk.Now, Observe: rec.observe,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := turn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("turn server: %v", err)
		}
	})
	return s, clk, rec
}

type client struct {
	relay net.PacketConn
}

// allocate connects a TURN client over UDP and allocates a relay.
func allocate(t testing.TB, s *turn.Server, user string, ttl time.Duration, now time.Time) (*client, error) {
	t.Helper()
	return allocateFrom(t, s, "127.0.0.1", user, ttl, now)
}

// allocateFrom is allocate from a client socket on local address ip (any
// of 127.0.0.0/8 works on Linux, so tests can have several client IPs).
func allocateFrom(t testing.TB, s *turn.Server, ip, user string, ttl time.Duration, now time.Time) (*client, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	un, pw := turn.Credentials(secret, user, ttl, now)
	relay, err := turntest.Allocate(t, conn, "127.0.0.1:"+strconv.Itoa(s.Port()), un, pw)
	if err != nil {
		return nil, err
	}
	return &client{relay: relay}, nil
}

func TestRelayBetweenAllocations(t *testing.T) {
	s, clk, rec := start(t, nil)
	a, err := allocate(t, s, "ticketA", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocate(t, s, "ticketA", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Relay IP 127.0.0.1 is the server's own: relay-to-relay is allowed
	// even without AllowPrivate.
	msg := []byte("through the relay")
	if _, err := b.relay.WriteTo([]byte("open"), a.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	sendUntilReceived(t, a.relay, b.relay, b.relay.LocalAddr(), msg)
	if s.RelayedBytes() == 0 || s.Allocations() != 2 || rec.count(turn.EventAllocated) != 2 {
		t.Fatalf("relayed %d bytes, %d allocations", s.RelayedBytes(), s.Allocations())
	}
}

// TestRelayBetweenAllocationsBehindNAT: two peers relaying through the
// same server reach each other without the kernel, so even when the
// advertised relay IP is not the host's (a relay behind a NAT that does
// not hairpin; here 127.0.0.2, which the relay sockets on 127.0.0.1 do not
// receive), and each sees the other's advertised relay address.
func TestRelayBetweenAllocationsBehindNAT(t *testing.T) {
	s, clk, _ := start(t, func(c *turn.Config) { c.RelayIP = net.IPv4(127, 0, 0, 2) })
	a, err := allocate(t, s, "ticketA", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocate(t, s, "ticketB", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ip := a.relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Fatalf("relay address %v", a.relay.LocalAddr())
	}
	if _, err := b.relay.WriteTo([]byte("open"), a.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"first, as a Send indication", "then over a channel"} {
		if src := sendUntilReceived(t, a.relay, b.relay, b.relay.LocalAddr(), []byte(m)); src.String() != a.relay.LocalAddr().String() {
			t.Fatalf("from %v, want %v", src, a.relay.LocalAddr())
		}
	}
	// And back, to the address it came from.
	sendUntilReceived(t, b.relay, a.relay, a.relay.LocalAddr(), []byte("back"))
	// A peer without a permission for the relay IP gets nothing.
	c, err := allocate(t, s, "ticketC", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.relay.WriteTo([]byte("unasked"), c.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	sendUntilReceived(t, a.relay, b.relay, b.relay.LocalAddr(), []byte("after"))
	_ = c.relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, from, err := c.relay.ReadFrom(make([]byte, 64)); err == nil {
		t.Fatalf("a peer without a permission got %d bytes from %v", n, from)
	}
}

// stallingConn stops reading, from its next read on, once stop is set,
// until release is closed: a TURN client that no longer reads its
// connection.
type stallingConn struct {
	net.PacketConn
	stop    atomic.Bool
	release chan struct{}
}

func (c *stallingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.stop.Load() {
		<-c.release
	}
	return c.PacketConn.ReadFrom(b)
}

// TestTCPClientCannotStallRelaying: a client over TCP that stops reading
// holds up its own relaying only. Packets for it go through its relay
// socket, never straight from the sender's goroutine (for UDP clients, the
// server's only read loop) into its full TCP window, so other clients are
// still relayed and served.
func TestTCPClientCannotStallRelaying(t *testing.T) {
	s, clk, _ := start(t, nil)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port())
	tc, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	stalled := &stallingConn{PacketConn: pionturn.NewSTUNConn(tc), release: make(chan struct{})}
	un, pw := turn.Credentials(secret, "ticketT", time.Hour, clk.Now())
	c := turntest.Client(t, stalled, addr, un, pw, nil)
	t.Cleanup(func() { close(stalled.release) }) // before the client's cleanup
	trelay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocate(t, s, "ticketB", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The TCP client lets the relay IP in (pion's client has the
	// permission before it sends), then stops reading.
	if _, err := trelay.WriteTo([]byte("open"), b.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	stalled.stop.Store(true)
	// Far more than its TCP buffers hold (some 8 MB here) is relayed on.
	buf := make([]byte, 1200)
	deadline := time.Now().Add(30 * time.Second)
	for s.RelayedBytes() < 64<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("relaying stalled at %d bytes", s.RelayedBytes())
		}
		if _, err := b.relay.WriteTo(buf, trelay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := allocate(t, s, "ticketC", time.Hour, clk.Now()); err != nil {
		t.Fatalf("a new client after the flood: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestExpiredCredentialsRefused(t *testing.T) {
	s, clk, rec := start(t, nil)
	if _, err := allocate(t, s, "ticketB", -time.Second, clk.Now()); err == nil {
		t.Fatal("allocation with expired credentials succeeded")
	}
	// Credentials issued for a minute stop working once the server's clock
	// is past their expiry.
	issued := clk.Now()
	clk.Advance(2 * time.Minute)
	if _, err := allocate(t, s, "ticketC", time.Minute, issued); err == nil {
		t.Fatal("allocation with credentials past expiry succeeded")
	}
	if rec.count(turn.EventAuthFailure) == 0 {
		t.Fatal("no auth failure observed")
	}
	if _, err := allocate(t, s, "ticketD", time.Hour, clk.Now()); err != nil {
		t.Fatalf("fresh credentials refused: %v", err)
	}
}

func TestPermissionToInternalRefused(t *testing.T) {
	s, clk, rec := start(t, nil)
	a, err := allocate(t, s, "ticketE", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, peer := range []string{"127.0.0.2:9", "10.1.2.3:9", "192.168.1.1:9", "169.254.1.1:9", "100.64.0.1:9"} {
		ua, _ := net.ResolveUDPAddr("udp4", peer)
		if _, err := a.relay.WriteTo([]byte("x"), ua); err == nil {
			t.Errorf("relay to %s permitted", peer)
		}
	}
	if rec.count(turn.EventDenied) == 0 {
		t.Fatal("no denial observed")
	}
}

func TestPermissionAllowPrivate(t *testing.T) {
	s, clk, _ := start(t, func(c *turn.Config) { c.AllowPrivate = true })
	a, err := allocate(t, s, "ticketF", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	ua, _ := net.ResolveUDPAddr("udp4", "127.0.0.2:9")
	if _, err := a.relay.WriteTo([]byte("x"), ua); err != nil {
		t.Fatalf("relay to loopback with AllowPrivate: %v", err)
	}
}

func TestQuotaPerTicket(t *testing.T) {
	s, clk, rec := start(t, func(c *turn.Config) { c.QuotaPerTicket = 2 })
	for i := range 2 {
		if _, err := allocate(t, s, "ticketG", time.Hour, clk.Now()); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if _, err := allocate(t, s, "ticketG", time.Hour, clk.Now()); err == nil {
		t.Fatal("allocation over quota succeeded")
	}
	if _, err := allocate(t, s, "ticketH", time.Hour, clk.Now()); err != nil {
		t.Fatalf("another ticket's allocation refused: %v", err)
	}
	if rec.count(turn.EventQuota) != 1 {
		t.Fatalf("quota events: %d", rec.count(turn.EventQuota))
	}
}

func TestBandwidthCap(t *testing.T) {
	// The clock never moves, so exactly one second's worth of budget (the
	// burst) may pass in each direction, whatever the machine's speed.
	const capBytes = 10_000
	// The sink is a plain socket on loopback: allow private peers.
	s, clk, _ := start(t, func(c *turn.Config) { c.Bandwidth = capBytes; c.AllowPrivate = true })
	a, err := allocate(t, s, "ticketI", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	pkt := make([]byte, 1000)
	for range 50 {
		if _, err := a.relay.WriteTo(pkt, sink.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the server has handled every packet, relayed or dropped.
	for s.RelayedBytes()+s.DroppedBytes() < 50*1000 {
		time.Sleep(time.Millisecond) // polling a condition; the test timeout bounds it
	}
	relayed := int(s.RelayedBytes())
	got := 0
	for got < relayed {
		buf := make([]byte, 2000)
		n, _, err := sink.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if got == 0 || got > capBytes {
		t.Fatalf("received %d bytes through a %d-byte budget", got, capBytes)
	}
}

func TestInternal(t *testing.T) {
	for _, c := range []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true}, {"10.0.0.1", true}, {"172.16.0.1", true}, {"192.168.0.1", true},
		{"169.254.0.1", true}, {"100.64.1.1", true}, {"0.0.0.0", true}, {"224.0.0.1", true},
		{"::1", true}, {"fe80::1", true}, {"fc00::1", true},
		{"8.8.8.8", false}, {"198.18.0.1", false}, {"2001:db8::1", false},
	} {
		if got := turn.Internal(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("Internal(%s) = %v", c.ip, got)
		}
	}
}

// TestOwnRelayIPOnlyToAllocations: the relay IP must be permitted (peers
// relay to each other's allocations), but only allocation ports may be
// reached there, not other services on the server's address.
func TestOwnRelayIPOnlyToAllocations(t *testing.T) {
	s, clk, _ := start(t, nil)
	a, err := allocate(t, s, "ticketJ", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocate(t, s, "ticketJ", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	service, err := net.ListenPacket("udp4", "127.0.0.1:0") // "some other service" on the relay IP
	if err != nil {
		t.Fatal(err)
	}
	defer service.Close()
	for range 5 {
		if _, err := a.relay.WriteTo([]byte("probe"), service.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// A marker to an allocation goes through; once it has, the probes
	// (sent before it on the same path) have been handled, and dropped.
	if _, err := b.relay.WriteTo([]byte("open"), a.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	sendUntilReceived(t, a.relay, b.relay, b.relay.LocalAddr(), []byte("marker"))
	_ = service.SetReadDeadline(time.Now()) // everything that could arrive has
	buf := make([]byte, 100)
	if n, _, err := service.ReadFrom(buf); err == nil {
		t.Fatalf("a non-allocation port on the relay IP received %q", buf[:n])
	}
	if s.RefusedBytes() == 0 || s.DroppedBytes() != 0 {
		t.Fatalf("refused %d, dropped %d bytes", s.RefusedBytes(), s.DroppedBytes())
	}
}

// inNetns marks the copy of the test binary that runTestInNetns starts
// inside a network namespace.
const inNetns = "FERRY_TURN_TEST_IN_NETNS"

// runTestInNetns runs test name again, in a fresh network namespace whose
// interface eth0 (one end of a veth pair: this kernel may have no dummy
// interfaces) has addrs, and fails if it fails there. The relay opens
// sockets from pion's goroutines, on any thread, so only a whole process
// can be put into another namespace. Needs root, like internal/netlab,
// whose namespaces (and cleanup) it uses.
func runTestInNetns(t *testing.T, name string, addrs ...string) {
	t.Helper()
	lab := netlab.New(t)
	ns := lab.NS("turn")
	ns.IP("link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ns.Up("eth1")
	ns.Up("eth0", addrs...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, os.Args[0],
		"-test.run=^"+name+"$", "-test.count=1", "-test.v", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), inNetns+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns.Name, out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("%s inside the namespace: %v", name, err)
	}
}

// TestHostsOtherAddressesRefused: relayed packets leave from the host
// itself, so a permission to any of the host's own addresses, not only
// the relay IP, would reach UDP services bound to 0.0.0.0 there, the TURN
// port included. The host here has a second, public-looking address on
// another interface; nothing relayed may reach it.
func TestHostsOtherAddressesRefused(t *testing.T) {
	const secondary = "198.51.100.7"
	if os.Getenv(inNetns) == "" {
		runTestInNetns(t, "TestHostsOtherAddressesRefused", secondary+"/24")
		return
	}
	s, clk, rec := start(t, func(c *turn.Config) { c.ListenAddr, c.RelayBind = "0.0.0.0:0", "0.0.0.0" })
	service, err := net.ListenPacket("udp4", "0.0.0.0:0") // a service on every address of the host
	if err != nil {
		t.Fatal(err)
	}
	defer service.Close()
	a, err := allocate(t, s, "ticketK", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{service.LocalAddr().(*net.UDPAddr).Port, s.Port()} {
		dst := &net.UDPAddr{IP: net.ParseIP(secondary), Port: port}
		if _, err := a.relay.WriteTo([]byte("probe"), dst); err == nil {
			t.Errorf("relay to the host's own %s permitted", dst)
		}
	}
	peer := netip.MustParseAddr(secondary)
	if rec.countWhere(func(e turn.Event) bool { return e.Kind == turn.EventDenied && e.Peer == peer }) == 0 {
		t.Error("no denial observed for", secondary)
	}

	// An address that becomes the host's later (a floating IP moving in)
	// is refused once the relay has re-read its addresses, even for a
	// peer that already has a permission.
	const later = "198.51.100.9"
	dst := &net.UDPAddr{IP: net.ParseIP(later), Port: service.LocalAddr().(*net.UDPAddr).Port}
	// The client asks for the permission (per IP) with a packet to a port
	// where nothing listens, whenever it leaves.
	if _, err := a.relay.WriteTo([]byte("before"), &net.UDPAddr{IP: dst.IP, Port: 9}); err != nil {
		t.Fatalf("relay to %s while it is not the host's: %v", later, err)
	}
	if out, err := exec.Command("ip", "addr", "add", later+"/32", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	s.Sweep()
	if _, err := a.relay.WriteTo([]byte("after"), dst); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.RefusedBytes() >= int64(len("after")) })

	// Every packet aimed at the host has been handled by now.
	_ = service.SetReadDeadline(time.Now())
	buf := make([]byte, 100)
	if n, from, err := service.ReadFrom(buf); err == nil {
		t.Fatalf("a service on the host's other addresses received %q from %s", buf[:n], from)
	}
}

// TestNestedAllocationRefused: with AllowPrivate (tests, LAN installs)
// the relay reaches loopback peers, but never its own TURN port: a client
// could otherwise allocate through its own allocation, again and again.
func TestNestedAllocationRefused(t *testing.T) {
	s, clk, _ := start(t, func(c *turn.Config) { c.AllowPrivate = true })
	a, err := allocate(t, s, "ticketL", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A loopback peer is still reached.
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sendUntilReceived(t, a.relay, sink, sink.LocalAddr(), []byte("hello"))
	// A TURN client speaking through the allocation to the relay's own port.
	turnAddr := "127.0.0.1:" + strconv.Itoa(s.Port())
	un, pw := turn.Credentials(secret, "ticketL", time.Hour, clk.Now())
	nested := turntest.Client(t, a.relay, turnAddr, un, pw, func(c *pionturn.ClientConfig) {
		c.RTO = 10 * time.Millisecond // gives up after about a second
	})
	if relay, err := nested.Allocate(); err == nil {
		relay.Close()
		t.Fatalf("nested allocation %s through %s", relay.LocalAddr(), a.relay.LocalAddr())
	}
	if s.RefusedBytes() == 0 || s.Allocations() != 1 {
		t.Fatalf("refused %d bytes, %d allocations", s.RefusedBytes(), s.Allocations())
	}
}

// TestIPv6Client: a client that reaches a dual-stack listener over IPv6
// without asking for an address family (as browsers do) gets the IPv4
// relay RelayIP advertises: pion/turn v5 would otherwise ask for a relay
// of the client's family, on an IPv4 RelayBind, and answer 508. One that
// asks for IPv6 is refused.
func TestIPv6Client(t *testing.T) {
	s, clk, _ := start(t, func(c *turn.Config) { c.ListenAddr, c.AllowPrivate = ":0", true })
	turnAddr := "[::1]:" + strconv.Itoa(s.Port())
	for _, family := range []pionturn.RequestedAddressFamily{pionturn.RequestedAddressFamilyIPv4, pionturn.RequestedAddressFamilyIPv6} {
		conn, err := net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback here: %v", err)
		}
		un, pw := turn.Credentials(secret, "ticket6", time.Hour, clk.Now())
		c := turntest.Client(t, conn, turnAddr, un, pw, func(c *pionturn.ClientConfig) { c.RequestedAddressFamily = family })
		relay, err := c.Allocate()
		if family == pionturn.RequestedAddressFamilyIPv6 {
			if err == nil {
				relay.Close()
				t.Fatalf("an IPv6 relay at %v", relay.LocalAddr())
			}
			continue
		}
		if err != nil {
			t.Fatalf("allocation over IPv6: %v", err)
		}
		defer relay.Close()
		if ua, ok := relay.LocalAddr().(*net.UDPAddr); !ok || ua.IP.To4() == nil {
			t.Fatalf("relay address %v, want the IPv4 relay IP", relay.LocalAddr())
		}
		peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		sendUntilReceived(t, relay, peer, peer.LocalAddr(), []byte("over v6, relayed on v4"))
	}
}

// TestNoTCPRelay: a TCP relay (RFC 6062) would let anyone with
// credentials open TCP connections from the server; it is refused, and a
// UDP allocation over the same TCP control connection still works.
func TestNoTCPRelay(t *testing.T) {
	s, clk, _ := start(t, func(c *turn.Config) { c.AllowPrivate = true })
	turnAddr := "127.0.0.1:" + strconv.Itoa(s.Port())
	tc, err := net.Dial("tcp4", turnAddr)
	if err != nil {
		t.Fatal(err)
	}
	un, pw := turn.Credentials(secret, "ticketT", time.Hour, clk.Now())
	c := turntest.Client(t, pionturn.NewSTUNConn(tc), turnAddr, un, pw, nil)
	if a, err := c.AllocateTCP(); err == nil {
		a.Close()
		t.Fatal("a TCP relay was allocated")
	}
	if s.Allocations() != 0 {
		t.Fatalf("%d allocations after the refusal", s.Allocations())
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("UDP relay over TCP: %v", err)
	}
	relay.Close()
}

// TestQuotaPerAddress: links are free, so one client address must not
// hold more than its share of the relay whatever links it uses.
func TestQuotaPerAddress(t *testing.T) {
	s, clk, rec := start(t, func(c *turn.Config) { c.QuotaPerTicket, c.QuotaPerAddress = 10, 2 })
	for i := range 2 {
		if _, err := allocateFrom(t, s, "127.0.0.1", "link"+strconv.Itoa(i), time.Hour, clk.Now()); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if _, err := allocateFrom(t, s, "127.0.0.1", "link2", time.Hour, clk.Now()); err == nil {
		t.Fatal("a third allocation from one address succeeded")
	}
	if _, err := allocateFrom(t, s, "127.0.0.2", "link3", time.Hour, clk.Now()); err != nil {
		t.Fatalf("another address's allocation refused: %v", err)
	}
	if n := rec.countWhere(func(e turn.Event) bool { return e.Kind == turn.EventQuota && e.Cap == turn.CapAddress }); n != 1 {
		t.Fatalf("address quota events: %d", n)
	}
}

// TestMaxAllocations: a cap on allocations in all (the port range size
// when there is one) refuses with capacity, and a released allocation
// makes room again.
func TestMaxAllocations(t *testing.T) {
	s, clk, rec := start(t, func(c *turn.Config) { c.MaxAllocations = 2 })
	var first *client
	for i, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		c, err := allocateFrom(t, s, ip, "link"+strconv.Itoa(i), time.Hour, clk.Now())
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		first = c
	}
	if _, err := allocateFrom(t, s, "127.0.0.3", "link2", time.Hour, clk.Now()); err == nil {
		t.Fatal("allocation over the global cap succeeded")
	}
	if n := rec.countWhere(func(e turn.Event) bool { return e.Kind == turn.EventQuota && e.Cap == turn.CapGlobal }); n != 1 {
		t.Fatalf("global cap events: %d", n)
	}
	if err := first.relay.Close(); err != nil { // deallocates (refresh with lifetime 0)
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Allocations() == 1 })
	if _, err := allocateFrom(t, s, "127.0.0.3", "link2", time.Hour, clk.Now()); err != nil {
		t.Fatalf("allocation after one was released: %v", err)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}

// links is the test's answer to Config.Alive: which links still exist.
type links struct {
	mu   sync.Mutex
	dead map[string]bool
}

func (l *links) alive(id string) bool { l.mu.Lock(); defer l.mu.Unlock(); return !l.dead[id] }
func (l *links) kill(id string)       { l.mu.Lock(); defer l.mu.Unlock(); l.dead[id] = true }

// TestDeadLinkAllocationsClosed: credentials must not outlive their link.
// Once it is gone, its allocations are closed (sockets and ports given
// back) and its credentials get no new one, while other links go on.
func TestDeadLinkAllocationsClosed(t *testing.T) {
	l := &links{dead: map[string]bool{"gone-before": true}}
	s, clk, rec := start(t, func(c *turn.Config) { c.Alive = l.alive })
	if _, err := allocate(t, s, "gone-before", time.Hour, clk.Now()); err == nil {
		t.Fatal("a dead link's credentials got an allocation")
	}
	var doomed []*client
	for range 3 {
		c, err := allocate(t, s, "abandoned", time.Hour, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		doomed = append(doomed, c)
	}
	kept, err := allocate(t, s, "kept", time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.kill("abandoned")
	s.Sweep()
	waitFor(t, func() bool { return s.Allocations() == 1 })
	// The relay sockets are closed: their ports can be bound again.
	for _, c := range doomed {
		pc, err := net.ListenPacket("udp4", c.relay.LocalAddr().String())
		if err != nil {
			t.Fatalf("relay socket %s still open: %v", c.relay.LocalAddr(), err)
		}
		pc.Close()
	}
	if _, err := allocate(t, s, "abandoned", time.Hour, clk.Now()); err == nil {
		t.Fatal("a dead link's credentials got an allocation after the sweep")
	}
	if n := rec.count(turn.EventRevoked); n != 3 {
		t.Fatalf("revoked events: %d", n)
	}
	if n := rec.countWhere(func(e turn.Event) bool { return e.Kind == turn.EventAuthFailure && e.Reason == turn.ReasonLinkGone }); n < 2 {
		t.Fatalf("link_gone refusals: %d", n)
	}
	// The living link's allocation still relays (to itself, here).
	sendUntilReceived(t, kept.relay, kept.relay, kept.relay.LocalAddr(), []byte("still here"))
}

// TestAbandonedAllocationReleased: a client that vanishes (no refresh, no
// deallocation) loses its allocation when the lifetime it asked for ends,
// and every count goes back: its address gets a new one under a quota of
// one. Speaks TURN by hand to ask for a one-second lifetime.
func TestAbandonedAllocationReleased(t *testing.T) {
	s, clk, _ := start(t, func(c *turn.Config) { c.QuotaPerAddress = 1 })
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port()}
	roundTrip := func(setters ...stun.Setter) *stun.Message {
		t.Helper()
		req := stun.MustBuild(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}, // UDP
			stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 1}}},           // one second
			setters...)...)
		if _, err := conn.WriteTo(req.Raw, server); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if err := res.Decode(); err != nil {
			t.Fatal(err)
		}
		return res
	}
	var nonce stun.Nonce
	var realm stun.Realm
	challenge := roundTrip(stun.Fingerprint)
	if err := nonce.GetFrom(challenge); err != nil {
		t.Fatalf("no nonce in %v: %v", challenge, err)
	}
	if err := realm.GetFrom(challenge); err != nil {
		t.Fatal(err)
	}
	un, pw := turn.Credentials(secret, "ticketM", time.Hour, clk.Now())
	res := roundTrip(stun.NewUsername(un), realm, nonce, stun.NewLongTermIntegrity(un, realm.String(), pw), stun.Fingerprint)
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); res.Type.Class != stun.ClassSuccessResponse || err != nil {
		t.Fatalf("allocation: %v (%v)", res, err)
	}
	if s.Allocations() != 1 {
		t.Fatalf("%d allocations", s.Allocations())
	}
	// The client is gone now: it never refreshes.
	waitFor(t, func() bool { return s.Allocations() == 0 })
	pc, err := net.ListenPacket("udp4", relayed.String())
	if err != nil {
		t.Fatalf("relay socket %s still open: %v", relayed.String(), err)
	}
	pc.Close()
	if _, err := allocate(t, s, "ticketM", time.Hour, clk.Now()); err != nil {
		t.Fatalf("the address's quota was not given back: %v", err)
	}
}

// sendUntilReceived writes msg from one socket to addr until the other
// socket reads it (UDP may lose packets before permissions settle), for
// at most 10 s, and returns the address it came from.
func sendUntilReceived(t testing.TB, from, to net.PacketConn, addr net.Addr, msg []byte) net.Addr {
	t.Helper()
	buf := make([]byte, 1600)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := from.WriteTo(msg, addr); err != nil {
			t.Fatal(err)
		}
		_ = to.SetReadDeadline(time.Now().Add(time.Second))
		n, src, err := to.ReadFrom(buf)
		if err == nil && bytes.Equal(buf[:n], msg) {
			return src
		}
		if err != nil && !isTimeout(err) {
			t.Fatal(err)
		}
	}
	t.Fatalf("%q never arrived", msg)
	return nil
}
