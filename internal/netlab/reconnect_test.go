package netlab_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/netlab"
)

// cutResult is what a transfer with a cut cable reported.
type cutResult struct {
	*netlab.Result
	// flowing is how long after the cable was back data moved again.
	flowing time.Duration
	// verifiedAtCut is what the receiver had verified when the cable was
	// cut; resumed the most the sender skipped on a new connection because
	// the receiver already had it.
	verifiedAtCut, resumed int64
	server                 *netlab.Server
}

// cut is what breaks during a transfer.
type cut int

const (
	// cutLAN cuts home a's router from its LAN (a Wi-Fi drop): the NAT
	// keeps its mappings, TCP connections survive a short cut.
	cutLAN cut = iota
	// cutRenumber cuts home a's uplink and gives the router a new public
	// address meanwhile (an ISP reconnect, another network): every
	// mapping is gone, the signaling WebSocket dies without a word and the
	// peers must resume the session on a new one.
	cutRenumber
)

// transferWithCut sends 20 MiB from home a to home b and breaks home a's
// network for outage once the receiver has 40%.
func transferWithCut(t *testing.T, outage time.Duration, how cut) cutResult {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone})
	srv := in.Serve(ferryBin)
	a := in.Home("a")
	// A 24 Mbit/s uplink makes 20 MiB take about 7 s, so the cut lands in
	// the middle of the transfer.
	a.Host.MustExec("tc", "qdisc", "add", "dev", a.LAN(), "root", "tbf", "rate", "24mbit", "burst", "64kb", "latency", "100ms")

	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tr := lab.StartTransfer(ctx, netlab.TransferSpec{
		Bin: ferryBin, Server: srv.URL, From: a.Host, To: in.Home("b").Host, File: src, Sum: sum,
	})
	before, next, err := netlab.WaitEvent(ctx, tr.Receiver, 0, "progress", func(e netlab.Event) bool { return e.Done*100 >= e.Total*40 })
	if err != nil {
		t.Fatalf("%v\nsender: %s\nserver: %s", err, tr.Sender.Describe(), srv.Describe())
	}
	setLink := a.SetLAN
	if how == cutRenumber {
		setLink = a.SetUplink
	}
	setLink(false)
	cut := time.Now()
	t.Logf("cut home a at %d%% (%d of %d bytes)", before.Done*100/before.Total, before.Done, before.Total)
	if how == cutRenumber {
		a.Renumber(netip.MustParseAddr("198.18.0.99"))
	}
	time.Sleep(outage) // the outage is the scenario, not a synchronisation
	setLink(true)
	restored := time.Now()
	// Data flows again when the receiver reports progress past the cut.
	after, _, err := netlab.WaitEvent(ctx, tr.Receiver, next, "progress", func(e netlab.Event) bool { return e.Done > before.Done })
	if err != nil {
		t.Fatalf("%v\nsender: %s\nserver: %s", err, tr.Sender.Describe(), srv.Describe())
	}
	res, err := tr.Finish(ctx)
	if err != nil {
		t.Fatalf("%v\nserver: %s", err, srv.Describe())
	}
	t.Logf("link back after %s; data flowing again %s later; done %s after the cut",
		restored.Sub(cut).Round(time.Millisecond), after.Time.Sub(restored).Round(time.Millisecond), res.RecvDone.Time.Sub(cut).Round(time.Millisecond))
	t.Logf("path %s, generations sender %d receiver %d, reconnecting events %d, sent %d bytes for %d",
		res.Path, res.SendDone.Generations, res.RecvDone.Generations, res.Reconnecting, res.SendDone.Sent, res.SendDone.Bytes)
	for _, e := range append(res.Send, res.Recv...) {
		if e.Event == "connected" || e.Event == "reconnecting" {
			t.Logf("  %s %s gen %d %s", e.Time.Format("15:04:05.000"), e.Event, e.Generation, e.Reason)
		}
	}
	if os.Getenv("NETLAB_DUMP") != "" {
		t.Logf("sender: %s\nreceiver: %s\nserver: %s", tr.Sender.Describe(), tr.Receiver.Describe(), srv.Describe())
	}
	r := cutResult{Result: res, flowing: after.Time.Sub(restored), verifiedAtCut: before.Done, server: srv}
	// The sender's progress counts what it skipped on this connection
	// because the receiver reported it verified (accept's resume ranges).
	for _, e := range res.Send {
		r.resumed = max(r.resumed, e.Resumed)
	}
	t.Logf("resumed from %d verified bytes (%d verified at the cut)", r.resumed, r.verifiedAtCut)
	return r
}

// TestLinkCut5s cuts home a off its router for 5 s: ICE goes
// "disconnected" after 3 s of silence, but the Go peer gives a disconnected
// connection 4 s more before it builds a new one (PROTOCOL §3.4), so the
// path that comes back after 5 s is kept: ICE consent checks find it again
// and SCTP retransmits. What must hold: the transfer resumes soon after the
// cable is back and ends with the right file.
func TestLinkCut5s(t *testing.T) {
	r := transferWithCut(t, 5*time.Second, cutLAN)
	if r.flowing > 5*time.Second {
		t.Errorf("data moved again only %s after the cable was back", r.flowing)
	}
}

// TestLinkCutRestartsConnection cuts for longer than the 3 s + 4 s the Go
// peer waits: the sender gives the connection up and, over the signaling
// connection that survived, brings a new generation up (an ICE restart
// with fresh candidates) once the network is back; the transfer continues
// from the verified chunks.
func TestLinkCutRestartsConnection(t *testing.T) {
	r := transferWithCut(t, 10*time.Second, cutLAN)
	checkRestarted(t, r)
	if r.flowing > 10*time.Second {
		t.Errorf("data moved again only %s after the cable was back", r.flowing)
	}
}

// checkRestarted checks that a new connection was built and continued from
// the chunks verified on the old one.
func checkRestarted(t *testing.T, r cutResult) {
	t.Helper()
	if r.SendDone.Generations < 2 || r.Reconnecting == 0 {
		t.Fatalf("generations %d, reconnecting events %d: expected a new connection", r.SendDone.Generations, r.Reconnecting)
	}
	if r.resumed < r.verifiedAtCut {
		t.Fatalf("the new connection resumed from %d bytes, but %d were verified before the cut", r.resumed, r.verifiedAtCut)
	}
}

// TestNewAddressResumesSignaling cuts home a's uplink for 5 s and gives it
// a new public address meanwhile: the NAT mappings of both the ICE path and
// the signaling WebSocket die with the old address, silently. The peers
// must notice, reconnect signaling with the session established after the
// handshake (the ticket is spent), and build a new connection.
func TestNewAddressResumesSignaling(t *testing.T) {
	r := transferWithCut(t, 5*time.Second, cutRenumber)
	checkRestarted(t, r)
	if !waitLine(r.server.Stderr, func(l string) bool { return strings.Contains(l, "kind=resumed") && strings.Contains(l, "role=S") }) {
		t.Fatalf("the sender never resumed its signaling session:\n%s", r.server.Stderr.Tail(30))
	}
}

// waitLine waits (bounded) for a line of a process's output that match
// accepts. A process's output reaches its Lines through a pipe and a
// goroutine: what it printed before an event the test saw elsewhere may
// still be on its way.
func waitLine(l *netlab.Lines, match func(string) bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := l.Wait(ctx, 0, match)
	return err == nil
}
