package netlab_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/netlab"
)

// coturnURLs are the lab coturn's TURN URLs, UDP and TCP.
var coturnURLs = fmt.Sprintf("turn:%s:%d?transport=udp,turn:%s:%d?transport=tcp",
	netlab.ServerIP, netlab.CoturnPort, netlab.ServerIP, netlab.CoturnPort)

// coturnAllocations counts the allocations coturn granted to users whose
// TURN REST name ends in ":"+user (any user if empty).
func coturnAllocations(ct *netlab.Proc, userPrefix string) int {
	granted := func(l string) bool {
		return (userPrefix == "" || strings.Contains(l, ":"+userPrefix)) && strings.Contains(l, "ALLOCATE processed, success")
	}
	// coturn's log reaches us through a pipe: wait (bounded) for the first
	// such line before counting what is there.
	if !waitLine(ct.Stdout, granted) {
		return 0
	}
	n := 0
	for _, l := range ct.Stdout.All() {
		// coturn logs the REST user as "<expiry>:<user>>".
		if granted(l) {
			n++
		}
	}
	return n
}

// TestCoturnWithPeerFlags points both Go peers at coturn with --turn and
// the shared secret. The ferry server runs without its bundled relay and
// the homes have symmetric NATs, so the file can only go through coturn.
func TestCoturnWithPeerFlags(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Symmetric}, netlab.HomeSpec{Name: "b", NAT: netlab.Symmetric})
	secret := "coturn-secret-" + t.Name()
	ct := in.Coturn(secret)
	srv := in.Serve(ferryBin, "--turn-listen", "")
	peerArgs := []string{"--turn", coturnURLs, "--turn-secret", secret}
	res := transfer(t, in, srv, peerArgs, peerArgs)
	if res.Path != "relay" {
		t.Fatalf("path %q, want relay", res.Path)
	}
	overUDP(t, in)
	// The Go peer names itself "ferry-cli-<random>" in the credentials it makes.
	if n := coturnAllocations(ct, "ferry-cli-"); n == 0 {
		t.Fatalf("coturn granted no allocation to ferry-cli:\n%s", ct.Stdout.Tail(40))
	} else {
		t.Logf("coturn granted %d allocations", n)
	}
}

// TestCoturnHandedOutByServer runs `ferry serve --turn-url … --turn-secret`
// without a bundled relay: the server hands both peers coturn's URLs with
// credentials for the ticket, and the peers use nothing else.
func TestCoturnHandedOutByServer(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Symmetric}, netlab.HomeSpec{Name: "b", NAT: netlab.Symmetric})
	secret := "coturn-secret-" + t.Name()
	ct := in.Coturn(secret)
	srv := in.Serve(ferryBin, "--turn-listen", "", "--turn-url", coturnURLs, "--turn-secret", secret)
	res := transfer(t, in, srv, nil, nil)
	if res.Path != "relay" {
		t.Fatalf("path %q, want relay", res.Path)
	}
	overUDP(t, in)
	// The server's credentials name the ticket: the link's id.
	id := ticketID(t, res)
	if n := coturnAllocations(ct, id); n == 0 {
		t.Fatalf("coturn granted no allocation to ticket %s:\n%s", id, ct.Stdout.Tail(40))
	} else {
		t.Logf("coturn granted %d allocations to ticket %s", n, id)
	}
}

// TestUclientAgainstFerryTURN runs coturn's turnutils_uclient, an
// independent TURN client, from a home behind a NAT against ferry's
// bundled relay (default permission filter) with the TURN REST secret, and
// logs what it measures.
func TestUclientAgainstFerryTURN(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone})
	// Every uclient runs from the one home address and leaves its
	// allocations to expire: no per-address cap (turn/ tests it).
	srv := in.Serve(ferryBin, "--turn-ip-quota", "0")
	peerNS, peerIP := in.PublicHost("peer")
	// turnutils_peer echoes UDP back: a peer on the internet.
	peerNS.Start("turnutils_peer", netlab.Env(t.TempDir()), "turnutils_peer", "-L", peerIP.String(), "-p", "3480")
	home := in.Home("a").Host
	// -m clients, -n messages of -l bytes each, one every -z ms per client.
	light := []string{"-m", "5", "-n", "200", "-l", "1000", "-z", "5"}
	// 5 clients, and -y allocates two relays per client: 10 allocations
	// on one credential from one address, within ferry's caps per link
	// (--turn-quota) and per address (--turn-ip-quota), 32 each.
	load := []string{"-m", "5", "-n", "3000", "-l", "1200", "-z", "1"}
	type uclientCase struct {
		name string
		args []string
		// refused: the relay must not carry anything.
		refused bool
		// minShare is the share of what was sent that must come back (in
		// %): all of it when idle, most of it under load on a shared
		// two-core machine.
		minShare int64
	}
	run := func(i int, c uclientCase) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// Each case its own user: ferry counts allocations per user (the
		// ticket) against --turn-quota, and uclient leaves its allocations
		// to expire rather than deleting them.
		argv := []string{"turnutils_uclient", "-W", srv.Secret, "-u", fmt.Sprintf("uclient%d", i), "-p", fmt.Sprint(netlab.TURNPort)}
		out, err := home.Run(ctx, append(append(argv, c.args...), netlab.ServerIP)...)
		u, perr := netlab.ParseUclient(out)
		switch {
		case c.refused:
			if err == nil || perr == nil || u.RecvBytes > 0 {
				t.Errorf("%s: uclient got through (%v): %s", c.name, err, u)
				return
			}
			t.Logf("%s: refused as it must be: %s", c.name, lastLine(out))
		case err != nil || perr != nil:
			t.Errorf("%s: %v, %v:\n%s", c.name, err, perr, out)
		case u.RecvBytes == 0 || u.RecvBytes < u.SentBytes*c.minShare/100:
			t.Errorf("%s: too little relayed: %s", c.name, u)
		default:
			t.Logf("%s: %s", c.name, u)
		}
	}
	// The light cases check function and run together (uclient waits a few
	// seconds after its last packet); the load case runs alone.
	var wg sync.WaitGroup
	for i, c := range []uclientCase{
		{"UDP, relay to relay", append([]string{"-y"}, light...), false, 99},
		{"TCP, relay to relay", append([]string{"-t", "-y"}, light...), false, 99},
		{"UDP, to a peer on the internet (echo)", append([]string{"-e", peerIP.String(), "-r", "3480"}, light...), false, 99},
		{"UDP, to the server's own loopback", append([]string{"-e", "127.0.0.1", "-r", "8080"}, light...), true, 0},
	} {
		wg.Go(func() { run(i, c) })
	}
	wg.Wait()
	run(9, uclientCase{"UDP, relay to relay, 5 clients at 1.2 MB/s each", append([]string{"-y"}, load...), false, 90})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ticketID is the id part of the link the sender printed.
func ticketID(t *testing.T, res *netlab.Result) string {
	t.Helper()
	for _, e := range res.Send {
		if e.Event == "link" {
			if _, frag, ok := strings.Cut(e.Link, "#"); ok {
				if id, _, ok := strings.Cut(frag, "."); ok {
					return id
				}
			}
		}
	}
	t.Fatal("no link event")
	return ""
}
