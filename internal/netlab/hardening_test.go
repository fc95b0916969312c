package netlab_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/netlab"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/turntest"
	"github.com/ferrydev/ferry/turn"
)

// turnClient is a TURN allocation whose socket lives in a lab namespace.
type turnClient struct {
	relay net.PacketConn
}

// allocate connects to the lab server's bundled relay over UDP from ns and
// asks for an allocation with the given TURN REST credentials.
func allocate(t *testing.T, ns *netlab.NS, username, password string) (*turnClient, error) {
	t.Helper()
	conn, err := ns.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := turntest.Allocate(t, conn, fmt.Sprintf("%s:%d", netlab.ServerIP, netlab.TURNPort), username, password)
	if err != nil {
		return nil, err
	}
	return &turnClient{relay: relay}, nil
}

// listen opens a UDP socket in ns that records nothing arriving.
func listen(t *testing.T, ns *netlab.NS, addr string) net.PacketConn {
	t.Helper()
	pc, err := ns.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// TestTURNRefusesInternalPeers allocates on `ferry serve`'s relay (default
// settings) from a home and tries to reach, through it, what sits behind
// the server: its own loopback, a private LAN and a link-local address
// next to it. Every permission must be refused and nothing may arrive,
// while a host on the internet (the control) gets its packet.
func TestTURNRefusesInternalPeers(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone})
	srv := in.Serve(ferryBin)
	// An internal network behind the server, with a private and a
	// link-local address (an admin interface, a metadata service...).
	internal := lab.NS("internal")
	netlab.Veth(in.Pub, "int0", internal, "eth0")
	in.Pub.Up("int0", "10.200.0.1/24", "169.254.10.1/24")
	internal.Up("eth0", "10.200.0.2/24", "169.254.10.2/24")
	public, publicIP := in.PublicHost("www")

	targets := map[string]net.PacketConn{
		"127.0.0.1:9999":    listen(t, in.Pub, "127.0.0.1:9999"),
		"10.200.0.2:9999":   listen(t, internal, "10.200.0.2:9999"),
		"169.254.10.2:9999": listen(t, internal, "169.254.10.2:9999"),
	}
	control := listen(t, public, publicIP.String()+":9999")

	user, pass := turn.Credentials(srv.Secret, "ticket-internal", time.Hour, time.Now())
	c, err := allocate(t, in.Home("a").Host, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	for target := range targets {
		ua, _ := net.ResolveUDPAddr("udp4", target)
		_, err := c.relay.WriteTo([]byte("should not get through"), ua)
		if err == nil {
			t.Errorf("relay to %s: permission granted", target)
		} else {
			t.Logf("relay to %s refused: %v", target, err)
		}
	}
	// The control proves the relay works and, once its packet is in, that
	// the refused ones had every chance to arrive.
	ua, _ := net.ResolveUDPAddr("udp4", control.LocalAddr().String())
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 100)
		_ = control.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := control.ReadFrom(buf)
		got <- err
	}()
	// UDP may lose the first packet while the permission is created; the
	// reader's deadline bounds the retries.
	for done := false; !done; {
		if _, err := c.relay.WriteTo([]byte("hello"), ua); err != nil {
			t.Fatalf("relay to a public host: %v", err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("the public host got nothing through the relay: %v", err)
			}
			done = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	for target, pc := range targets {
		_ = pc.SetReadDeadline(time.Now())
		if n, from, err := pc.ReadFrom(make([]byte, 100)); err == nil {
			t.Errorf("%s received %d bytes from %s through the relay", target, n, from)
		}
	}
}

// iceCredentials creates a ticket on the lab server from ns and returns
// the TURN credentials the server hands out for it.
func iceCredentials(t *testing.T, ns *netlab.NS, srv *netlab.Server) (ticketID, username, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base, _ := url.Parse(srv.URL)
	sig, err := sigclient.Dial(ctx, base, sigclient.Options{HTTPClient: ns.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sig.Close() })
	created, err := sig.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range created.ICEServers {
		if s.Username != "" {
			return created.ID, s.Username, s.Credential
		}
	}
	t.Fatalf("no TURN credentials in %+v", created.ICEServers)
	return "", "", ""
}

// TestTURNCredentialsExpire gets credentials from `ferry serve
// --turn-credential-ttl 2s --ticket-ttl 1s` through signaling, as a peer
// does: they work at once, and are refused after their expiry (a waiting
// sender's last the link's lifetime plus the credential ttl); credentials
// made with another secret never work.
func TestTURNCredentialsExpire(t *testing.T) {
	const ttl, ticketTTL = 2 * time.Second, time.Second
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone})
	srv := in.Serve(ferryBin, "--turn-credential-ttl", ttl.String(), "--ticket-ttl", ticketTTL.String())
	home := in.Home("a").Host
	id, user, pass := iceCredentials(t, home, srv)
	exp, name, _ := strings.Cut(user, ":")
	expiry, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || name != id {
		t.Fatalf("TURN username %q: want <expiry>:%s", user, id)
	}
	if left := time.Until(time.Unix(expiry, 0)); left > ticketTTL+ttl+time.Second || left < 0 {
		t.Fatalf("credentials expire in %s, want about %s", left, ticketTTL+ttl)
	}
	if _, err := allocate(t, home, user, pass); err != nil {
		t.Fatalf("fresh credentials refused: %v", err)
	}
	forgedUser, forgedPass := turn.Credentials("not-the-secret", id, time.Hour, time.Now())
	if _, err := allocate(t, home, forgedUser, forgedPass); err == nil {
		t.Fatal("credentials made with another secret accepted")
	}
	// Waiting out the lifetime is the scenario (the server's clock is the
	// real one), not a synchronisation.
	time.Sleep(time.Until(time.Unix(expiry, 0).Add(time.Second)))
	if _, err := allocate(t, home, user, pass); err == nil {
		t.Fatal("expired credentials accepted")
	} else {
		t.Logf("expired credentials refused: %v", err)
	}
}

// TestTURNQuotaPerTicket: with `--turn-quota 2`, a ticket's credentials get
// two concurrent allocations and no third, while another ticket still
// gets its own.
func TestTURNQuotaPerTicket(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone})
	srv := in.Serve(ferryBin, "--turn-quota", "2")
	a, b := in.Home("a").Host, in.Home("b").Host
	_, user, pass := iceCredentials(t, a, srv)
	// The sender and the receiver of a ticket share its quota: the second
	// allocation comes from the other home.
	for i, ns := range []*netlab.NS{a, b} {
		if _, err := allocate(t, ns, user, pass); err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
	}
	_, err := allocate(t, a, user, pass)
	if err == nil {
		t.Fatal("third allocation for one ticket granted with --turn-quota 2")
	}
	t.Logf("third allocation refused: %v", err)
	_, user2, pass2 := iceCredentials(t, b, srv)
	if _, err := allocate(t, b, user2, pass2); err != nil {
		t.Fatalf("another ticket's allocation refused: %v", err)
	}
}

// TestTURNBandwidthCap sends the same relayed transfer (--relay-only) through
// `ferry serve` without a cap and with `--turn-bandwidth 2000000` (bytes/s
// per allocation and direction): the capped one must not beat the cap (after
// the one second of burst the policer allows) and must still finish.
func TestTURNBandwidthCap(t *testing.T) {
	const capBps = 2_000_000
	const fileSize = 8 << 20
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone})
	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", fileSize)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) *netlab.Result {
		t.Helper()
		srv := in.Serve(ferryBin, args...)
		defer srv.Stop() // the next server takes the same ports
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		relayOnly := []string{"--relay-only"}
		tr := lab.StartTransfer(ctx, netlab.TransferSpec{
			Bin: ferryBin, Server: srv.URL, From: in.Home("a").Host, To: in.Home("b").Host,
			File: src, Sum: sum, SendArgs: relayOnly, RecvArgs: relayOnly,
		})
		res, err := tr.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Path != proto.PathRelay {
			t.Fatalf("path %q with --relay-only", res.Path)
		}
		return res
	}
	free := run()
	capped := run("--turn-bandwidth", strconv.Itoa(capBps))
	// The policer starts with a full bucket (one second's worth), so the
	// fastest the file may cross is (size - burst) / cap. Bytes on the wire
	// exceed the file (headers, SCTP, DTLS, TURN): this is a lower bound.
	limit := float64(fileSize-capBps) / capBps
	t.Logf("uncapped %.1f MB/s in %s; capped at %.1f MB/s: %.2f MB/s in %s (ratio %.2f)",
		free.MBps, free.Elapsed.Round(time.Millisecond), float64(capBps)/1e6, capped.MBps,
		capped.Elapsed.Round(time.Millisecond), capped.MBps/free.MBps)
	if capped.Elapsed.Seconds() < limit*0.9 {
		t.Fatalf("%d bytes went through a %d B/s cap in %s; the cap allows no less than %.1fs", fileSize, capBps, capped.Elapsed, limit)
	}
}
