package netlab_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/browsertest"
	"github.com/ferrydev/ferry/internal/netlab"
	"github.com/ferrydev/ferry/internal/proto"
)

// pathBrowsers is a transfer between two Chromium pages on the ends of a
// lab path: the send page on A, the receiving page on B.
type pathBrowsers struct {
	sb, rb context.Context
	name   string
	want   string // sha256 hex
	size   int64
}

// startPathBrowsers opens the send page on A with a fresh random file,
// opens its link on B and accepts; senderJS runs first on the send page
// (test hooks).
func startPathBrowsers(t *testing.T, ctx context.Context, p *netlab.Path, srv *netlab.Server, size int64, senderJS string) (*pathBrowsers, time.Time) {
	t.Helper()
	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	pb := &pathBrowsers{name: "payload.bin", want: fmt.Sprintf("%x", sum), size: size}
	pb.sb = p.A.Browser(ctx, srv.URL)
	pb.rb = p.B.Browser(ctx, srv.URL)
	browsertest.LogConsole(t, pb.sb, "sender")
	browsertest.LogConsole(t, pb.rb, "receiver")
	onNewDocument(t, pb.sb, recordStates+senderJS)
	onNewDocument(t, pb.rb, recordStates+stubSavePickerOPFS)
	if err := chromedp.Do(pb.sb, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open send page: %v", err)
	}
	if err := chromedp.Do(pb.sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src})); err != nil {
		t.Fatalf("pick file: %v", err)
	}
	link, err := chromedp.Run(pb.sb, chromedp.Poll[string](`document.getElementById("link").value || null`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pagePoll)))
	if err != nil {
		t.Fatalf("no link on the send page: %v\n%s", err, diag(pb.sb))
	}
	if err := chromedp.Do(pb.rb, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(pb.rb, "ready", "error"); err != nil || st != "ready" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(pb.rb))
	}
	if err := chromedp.Do(pb.rb, chromedp.Click(chromedp.ID("receive"))); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(pb.rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(pb.rb), diag(pb.sb))
	}
	if err := chromedp.Do(pb.rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	return pb, time.Now()
}

// finish waits for both pages, checks the received file's SHA-256 and
// returns how many connections the sender striped over.
func (pb *pathBrowsers) finish(t *testing.T) (stripes int) {
	t.Helper()
	if st, err := waitState(pb.rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(pb.rb), diag(pb.sb))
	}
	if st, err := waitState(pb.sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v)\nsender: %s", st, err, diag(pb.sb))
	}
	pb.checkFile(t)
	n, err := pageEval[int](pb.sb, `window.ferryDebug.flow.sender.stripesUsed`)
	if err != nil {
		t.Fatalf("stripes used: %v", err)
	}
	return n
}

// checkFile checks the received file's SHA-256.
func (pb *pathBrowsers) checkFile(t *testing.T) {
	t.Helper()
	got, err := pageEval[string](pb.rb, fmt.Sprintf(`(async () => {
  const root = await navigator.storage.getDirectory();
  const f = await (await root.getFileHandle(%q)).getFile();
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
})()`, pb.name))
	if err != nil {
		t.Fatalf("hash the received file: %v", err)
	}
	if got != pb.want {
		t.Fatalf("received sha256 %s, sent %s", got, pb.want)
	}
}

// TestBrowsersStripeOverLossyPath: two Chromiums 30 ms apart with 0.2 %
// loss each way stripe the transfer over several peer connections
// (PROTOCOL.md §3.4), and the file arrives intact. The time bound is for a
// loaded machine; speed is the bench's business.
func TestBrowsersStripeOverLossyPath(t *testing.T) {
	p, srv, ctx := lossyStripePath(t)
	pb, start := startPathBrowsers(t, ctx, p, srv, 24<<20, "")
	n := pb.finish(t)
	el := time.Since(start)
	t.Logf("24 MiB in %v (%.1f MB/s) over %d connections", el.Round(time.Millisecond), float64(pb.size)/1e6/el.Seconds(), n)
	if n < 2 {
		t.Fatalf("the sender used %d connection(s), want stripes", n)
	}
}

// lossyStripePath is the 30 ms path with 0.2 % loss, a server on it and
// the time bound of a striping test (for a loaded machine; speed is the
// bench's business).
func lossyStripePath(t *testing.T) (*netlab.Path, *netlab.Server, context.Context) {
	p := netlab.New(t).Path(netlab.Path30msLoss2, emuBin)
	srv := p.Serve(ferryBin)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return p, srv, ctx
}

// TestBrowsersStripeSpeed measures Chromium → Chromium with and without
// stripes on the 30 ms paths. It is a measurement, not a check: it runs
// only with FERRY_STRIPE_MEASURE=<MiB>.
func TestBrowsersStripeSpeed(t *testing.T) {
	mib, _ := strconv.Atoi(os.Getenv("FERRY_STRIPE_MEASURE"))
	if mib <= 0 {
		t.Skip("set FERRY_STRIPE_MEASURE=<MiB> to measure")
	}
	for _, spec := range []netlab.PathSpec{netlab.Path30ms, netlab.Path30msLoss2, netlab.PathLAN} {
		for _, stripes := range []string{"0", "auto"} {
			t.Run(spec.Name+"/stripes="+stripes, func(t *testing.T) {
				l := netlab.New(t)
				p := l.Path(spec, emuBin)
				srv := p.Serve(ferryBin)
				ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
				defer cancel()
				js := ""
				if stripes == "0" {
					js = "window.ferryTest = { stripes: 0 };"
				}
				pb, start := startPathBrowsers(t, ctx, p, srv, int64(mib)<<20, js)
				n := pb.finish(t)
				el := time.Since(start)
				t.Logf("%s stripes=%s: %d MiB in %v: %.2f MB/s over %d connection(s)", spec.Name, stripes, mib, el.Round(time.Millisecond), float64(pb.size)/1e6/el.Seconds(), n)
			})
		}
	}
}

// TestBrowserToGoStripesOverLossyPath: a Chromium sender stripes to a Go
// receiver over the 30 ms path with 0.2 % loss; the Go receiver takes
// chunks from every stripe and the file arrives intact. Relay-only, the
// stripes go through the relay, at most proto.MaxRelayStripes of them.
func TestBrowserToGoStripesOverLossyPath(t *testing.T) {
	p, srv, ctx := lossyStripePath(t)
	for _, relay := range []bool{false, true} {
		t.Run(fmt.Sprintf("relay=%v", relay), func(t *testing.T) { browserToGoStripes(t, ctx, p, srv, relay) })
	}
}

func browserToGoStripes(t *testing.T, ctx context.Context, p *netlab.Path, srv *netlab.Server, relay bool) {
	const size = 24 << 20
	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	sb := p.A.Browser(ctx, srv.URL)
	browsertest.LogConsole(t, sb, "sender")
	onNewDocument(t, sb, recordStates)
	page, args, want, maxN := srv.URL+"/", []string{"receive", "--json", "--log-level", "debug"}, "direct", proto.MaxStripes
	if relay {
		page, args, want, maxN = relayParam(page), append(args, "--relay-only"), "relay", proto.MaxRelayStripes
	}
	if err := chromedp.Do(sb, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open send page: %v", err)
	}
	if err := chromedp.Do(sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src})); err != nil {
		t.Fatalf("pick file: %v", err)
	}
	link, err := chromedp.Run(sb, chromedp.Poll[string](`document.getElementById("link").value || null`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pagePoll)))
	if err != nil {
		t.Fatalf("no link on the send page: %v\n%s", err, diag(sb))
	}
	out := t.TempDir()
	start := time.Now()
	rp := p.B.Start("ferry receive", netlab.Env(t.TempDir(), "FERRY_LINK="+link),
		append(append([]string{ferryBin}, args...), "--out", out)...)
	done, _, err := netlab.WaitEvent(ctx, rp, 0, "done", nil)
	if err != nil {
		t.Fatalf("receiver: %v\n%s\nsender: %s", err, rp.Describe(), diag(sb))
	}
	if done.Path != want {
		t.Fatalf("path %q, want %q", done.Path, want)
	}
	el := time.Since(start)
	if err := rp.Wait(ctx); err != nil {
		t.Fatalf("receiver exited with %v\n%s", err, rp.Describe())
	}
	got, err := netlab.FileSum(out + "/payload.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got != sum {
		t.Fatalf("received SHA-256 %x, sent %x", got, sum)
	}
	if st, err := waitState(sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v)\nsender: %s", st, err, diag(sb))
	}
	n, err := pageEval[int](sb, `window.ferryDebug.flow.sender.stripesUsed`)
	if err != nil {
		t.Fatal(err)
	}
	opened := 0
	for _, line := range rp.Stderr.All() {
		if strings.Contains(line, "stripe open") {
			opened++
		}
	}
	t.Logf("24 MiB in %v (%.1f MB/s, from the receiver's start) over %d connections; the receiver opened %d stripes",
		el.Round(time.Millisecond), float64(size)/1e6/el.Seconds(), n, opened)
	if n < 2 || n > maxN || opened < 1 {
		t.Fatalf("the sender used %d connection(s), the receiver opened %d stripes; want stripes, at most %d connections", n, opened, maxN)
	}
}

// TestGoToBrowserStripesOverLossyPath: a Go sender stripes to a Chromium
// receiver over the 30 ms path with 0.2 % loss, and the file arrives
// intact.
func TestGoToBrowserStripesOverLossyPath(t *testing.T) {
	p, srv, ctx := lossyStripePath(t)
	const size = 24 << 20
	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	sp := p.A.Start("ferry send", netlab.Env(t.TempDir()), ferryBin, "send", "--json", "--log-level", "debug", "--server", srv.URL, src)
	link, _, err := netlab.WaitEvent(ctx, sp, 0, "link", nil)
	if err != nil {
		t.Fatal(err)
	}
	rb := p.B.Browser(ctx, srv.URL)
	browsertest.LogConsole(t, rb, "receiver")
	onNewDocument(t, rb, recordStates+stubSavePickerOPFS)
	if err := chromedp.Do(rb, chromedp.Navigate(link.Link)); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(rb, "ready", "error"); err != nil || st != "ready" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("receive"))); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s\n%s", st, err, diag(rb), sp.Describe())
	}
	start := time.Now()
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	pb := &pathBrowsers{sb: nil, rb: rb, name: "payload.bin", want: fmt.Sprintf("%x", sum), size: size}
	if st, err := waitState(rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\n%s", st, err, diag(rb), sp.Describe())
	}
	el := time.Since(start)
	pb.checkFile(t)
	if err := sp.Wait(ctx); err != nil {
		t.Fatalf("sender exited with %v\n%s", err, sp.Describe())
	}
	opened := 0
	for _, line := range sp.Stderr.All() {
		if strings.Contains(line, "stripe open") {
			opened++
		}
	}
	t.Logf("24 MiB in %v (%.1f MB/s); the sender opened %d stripes", el.Round(time.Millisecond), float64(size)/1e6/el.Seconds(), opened)
	if opened < 1 {
		t.Fatalf("the sender opened no stripe\n%s", sp.Describe())
	}
}
