package netlab_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/netlab"
)

// size is what every lab case transfers.
const size = 20 << 20

// transfer sends a fresh random file from home "a" to home "b" and checks it.
func transfer(t *testing.T, in *netlab.Internet, srv *netlab.Server, sendArgs, recvArgs []string) *netlab.Result {
	t.Helper()
	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := in.Lab.StartTransfer(ctx, netlab.TransferSpec{
		Bin: ferryBin, Server: srv.URL, From: in.Home("a").Host, To: in.Home("b").Host,
		File: src, Sum: sum, SendArgs: sendArgs, RecvArgs: recvArgs,
	})
	res, err := tr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("path %s, %.1f MB/s (%d MiB in %s), generations %d/%d",
		res.Path, res.MBps, size>>20, res.Elapsed.Round(time.Millisecond), res.SendDone.Generations, res.RecvDone.Generations)
	return res
}

func TestConeNATsConnectDirectly(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone})
	srv := in.Serve(ferryBin)
	res := transfer(t, in, srv, nil, nil)
	if res.Path != "direct" {
		t.Fatalf("path %q, want direct", res.Path)
	}
	overUDP(t, in)
}

func TestSymmetricNATFallsBackToRelay(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Symmetric}, netlab.HomeSpec{Name: "b", NAT: netlab.Symmetric})
	srv := in.Serve(ferryBin)
	res := transfer(t, in, srv, nil, nil)
	if res.Path != "relay" {
		t.Fatalf("path %q, want relay", res.Path)
	}
	overUDP(t, in)
}

func TestUDPBlockedUsesTURNOverTCP(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone, BlockUDP: true})
	srv := in.Serve(ferryBin)
	res := transfer(t, in, srv, nil, nil)
	if res.Path != "relay" {
		t.Fatalf("path %q, want relay", res.Path)
	}
	// The receiver's home let no UDP through: the file came in over TCP,
	// which only the TURN server's TCP listener accepts.
	c := counters(t, in.Home("b"))
	if c.InTCP < size || c.InUDP != 0 || c.OutUDP != 0 || c.UDPDropped == 0 {
		t.Fatalf("home b: %+v; want >= %d bytes in over TCP and no UDP", c, size)
	}
}

func counters(t *testing.T, h *netlab.Home) netlab.Counters {
	t.Helper()
	c, err := h.Counters()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("home %s router forwarded: %+v", h.Spec.Name, c)
	return c
}

// overUDP checks that the file left home a and reached home b over UDP.
func overUDP(t *testing.T, in *netlab.Internet) {
	t.Helper()
	if a, b := counters(t, in.Home("a")), counters(t, in.Home("b")); a.OutUDP < size || b.InUDP < size {
		t.Fatalf("expected the file to cross both NATs over UDP")
	}
}
