package turn_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/turntest"
	"github.com/ferrydev/ferry/turn"
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
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

const secret = "test-secret"

func start(t *testing.T, mod func(*turn.Config)) (*turn.Server, *fakeClock, *recorder) {
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
func allocate(t *testing.T, s *turn.Server, user string, ttl time.Duration, now time.Time) (*client, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
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
	got := make([]byte, 100)
	for {
		if _, err := a.relay.WriteTo(msg, b.relay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = b.relay.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := b.relay.ReadFrom(got)
		if err == nil && bytes.Equal(got[:n], msg) {
			break
		}
		if err != nil && !isTimeout(err) {
			t.Fatal(err)
		}
		// UDP may lose the first packet before permissions settle; the
		// test's own deadline bounds this loop.
	}
	if s.RelayedBytes() == 0 || s.Allocations() != 2 || rec.count(turn.EventAllocated) != 2 {
		t.Fatalf("relayed %d bytes, %d allocations", s.RelayedBytes(), s.Allocations())
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
	buf := make([]byte, 100)
	for {
		if _, err := a.relay.WriteTo([]byte("marker"), b.relay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = b.relay.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := b.relay.ReadFrom(buf)
		if err == nil && string(buf[:n]) == "marker" {
			break
		}
		if err != nil && !isTimeout(err) {
			t.Fatal(err)
		}
	}
	_ = service.SetReadDeadline(time.Now()) // everything that could arrive has
	if n, _, err := service.ReadFrom(buf); err == nil {
		t.Fatalf("a non-allocation port on the relay IP received %q", buf[:n])
	}
	if s.RefusedBytes() == 0 || s.DroppedBytes() != 0 {
		t.Fatalf("refused %d, dropped %d bytes", s.RefusedBytes(), s.DroppedBytes())
	}
}
