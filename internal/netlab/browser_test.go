package netlab_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/netlab"
)

// Page scripts. The receiver saves into the origin-private file system in
// place of the file the save dialog would return; every page records the
// states it goes through (data-state on <body>) so a test can tell it
// reconnected.
const (
	stubSavePickerOPFS = `window.showSaveFilePicker = async (o) => {
  const root = await navigator.storage.getDirectory();
  return root.getFileHandle(o.suggestedName, { create: true });
};`
	recordStates = `window.__netlabStates = [];
new MutationObserver(() => {
  const s = document.body && document.body.dataset.state;
  const a = window.__netlabStates;
  if (s && a[a.length - 1] !== s) a.push(s);
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });`
)

// pagePoll bounds each wait on a page.
const pagePoll = 90 * time.Second

func onNewDocument(t *testing.T, b context.Context, js string) {
	t.Helper()
	if _, err := chromedp.Call(b, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		t.Fatalf("add script: %v", err)
	}
}

func pageEval[T any](b context.Context, js string) (T, error) {
	return chromedp.Run(b, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// waitState polls the page's data-state until it is one of states.
func waitState(b context.Context, states ...string) (string, error) {
	js := fmt.Sprintf(`(() => { const s = document.body && document.body.dataset.state; return %q.split(",").includes(s) ? s : null; })()`, strings.Join(states, ","))
	return chromedp.Run(b, chromedp.Poll[string](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pagePoll)))
}

// diag describes a page for failure messages.
func diag(b context.Context) string {
	s, err := pageEval[string](b, `JSON.stringify({state: document.body.dataset.state, states: window.__netlabStates,
  status: (document.getElementById("status") || {}).textContent, error: (document.getElementById("error") || {}).textContent,
  progress: (document.getElementById("progress-text") || {}).textContent, path: (document.getElementById("path") || {}).textContent})`)
	if err != nil {
		return err.Error()
	}
	return s
}

// browserTransfer is a transfer between two Chromium pages in two homes.
type browserTransfer struct {
	t        *testing.T
	sb, rb   context.Context
	name     string
	want     string // sha256 hex
	size     int64
	accepted time.Time
}

// startBrowserTransfer opens the send page in home a's browser, picks a
// fresh random file, opens the link in home b's browser and accepts.
func startBrowserTransfer(t *testing.T, ctx context.Context, in *netlab.Internet, srv *netlab.Server, size int64) *browserTransfer {
	t.Helper()
	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	bt := &browserTransfer{t: t, name: "payload.bin", want: fmt.Sprintf("%x", sum), size: size}
	bt.sb = in.Home("a").Host.Browser(ctx, srv.URL)
	bt.rb = in.Home("b").Host.Browser(ctx, srv.URL)
	onNewDocument(t, bt.sb, recordStates)
	onNewDocument(t, bt.rb, recordStates+stubSavePickerOPFS)
	if err := chromedp.Do(bt.sb, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open send page: %v", err)
	}
	if err := chromedp.Do(bt.sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src})); err != nil {
		t.Fatalf("pick file: %v", err)
	}
	link, err := chromedp.Run(bt.sb, chromedp.Poll[string](
		`(() => { const v = document.getElementById("link").value; if (v) return v; const e = document.getElementById("error"); if (!e.hidden) throw new Error(e.textContent); return null; })()`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pagePoll)))
	if err != nil {
		t.Fatalf("no link on the send page: %v\n%s", err, diag(bt.sb))
	}
	if err := chromedp.Do(bt.rb, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(bt.rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s\nsender: %s\n%s", st, err, diag(bt.rb), diag(bt.sb), in.Lab.Describe())
	}
	if err := chromedp.Do(bt.rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	bt.accepted = time.Now()
	return bt
}

// browserResult is what the pages reported.
type browserResult struct {
	path      string // the receiver's #path data-path
	sendPath  string
	elapsed   time.Duration // accept to done
	mbps      float64
	states    []string // the receiver's states
	sendState []string
}

// finish waits for both pages to be done, checks the received file's
// SHA-256 and both pages' path.
func (bt *browserTransfer) finish() browserResult {
	t := bt.t
	t.Helper()
	if st, err := waitState(bt.rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(bt.rb), diag(bt.sb))
	}
	elapsed := time.Since(bt.accepted)
	if st, err := waitState(bt.sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v)\nsender: %s", st, err, diag(bt.sb))
	}
	got, err := pageEval[string](bt.rb, fmt.Sprintf(`(async () => {
  const root = await navigator.storage.getDirectory();
  const f = await (await root.getFileHandle(%q)).getFile();
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
})()`, bt.name))
	if err != nil {
		t.Fatalf("hash the received file: %v", err)
	}
	if got != bt.want {
		t.Fatalf("received sha256 %s, sent %s", got, bt.want)
	}
	var r browserResult
	r.elapsed = elapsed
	r.mbps = float64(bt.size) / 1e6 / elapsed.Seconds()
	r.path, _ = pageEval[string](bt.rb, `document.getElementById("path").dataset.path || ""`)
	r.sendPath, _ = pageEval[string](bt.sb, `document.getElementById("path").dataset.path || ""`)
	r.states, _ = pageEval[[]string](bt.rb, `window.__netlabStates || []`)
	r.sendState, _ = pageEval[[]string](bt.sb, `window.__netlabStates || []`)
	if r.path != r.sendPath {
		t.Fatalf("receiver page reports path %q, sender page %q", r.path, r.sendPath)
	}
	t.Logf("browsers: path %s, %.1f MB/s (%d MiB, accept to done %s); receiver states %v",
		r.path, r.mbps, bt.size>>20, elapsed.Round(time.Millisecond), r.states)
	return r
}

// TestBrowsersBehindNATs runs cases (a), (b) and (c) with two Chromium
// pages, each running inside its home: cone NATs connect directly,
// symmetric NATs through the relay, and a home without UDP through the
// relay over TCP.
func TestBrowsersBehindNATs(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b netlab.HomeSpec
		path string
	}{
		{"cone NATs", netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone}, "direct"},
		{"symmetric NATs", netlab.HomeSpec{Name: "a", NAT: netlab.Symmetric}, netlab.HomeSpec{Name: "b", NAT: netlab.Symmetric}, "relay"},
		{"UDP blocked", netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone, BlockUDP: true}, "relay"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lab := netlab.New(t)
			in := lab.Internet(c.a, c.b)
			srv := in.Serve(ferryBin)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r := startBrowserTransfer(t, ctx, in, srv, size).finish()
			if r.path != c.path {
				t.Fatalf("path %q, want %s", r.path, c.path)
			}
			if c.b.BlockUDP {
				if b := counters(t, in.Home("b")); b.InTCP < size || b.InUDP != 0 {
					t.Fatalf("expected the file to reach home b over TCP only")
				}
			} else {
				overUDP(t, in)
			}
		})
	}
}

// progressAtLeast waits until the receiver page has verified at least
// frac of the file (or more than after bytes), and returns the bytes.
func progressAtLeast(b context.Context, frac float64, after float64) (float64, error) {
	js := fmt.Sprintf(`(() => { const p = document.getElementById("progress"); if (!p || p.max <= 1) return null;
  return (p.value / p.max >= %f && p.value > %f) ? p.value : null; })()`, frac, after)
	return chromedp.Run(b, chromedp.Poll[float64](js, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(pagePoll)))
}

// browserCut sends 20 MiB between two Chromium pages in cone-NAT homes,
// cuts home a off its router (a Wi-Fi drop) for outage at 40%, and checks
// the file arrives intact.
func browserCut(t *testing.T, outage time.Duration) browserResult {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone})
	srv := in.Serve(ferryBin)
	a := in.Home("a")
	a.Host.MustExec("tc", "qdisc", "add", "dev", a.LAN(), "root", "tbf", "rate", "24mbit", "burst", "64kb", "latency", "100ms")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bt := startBrowserTransfer(t, ctx, in, srv, size)
	at, err := progressAtLeast(bt.rb, 0.4, 0)
	if err != nil {
		t.Fatalf("progress: %v\n%s", err, diag(bt.rb))
	}
	a.SetLAN(false)
	cut := time.Now()
	time.Sleep(outage) // the outage is the scenario, not a synchronisation
	a.SetLAN(true)
	restored := time.Now()
	t.Logf("cut home a at %.0f%% for %s", at*100/size, restored.Sub(cut).Round(time.Millisecond))
	if _, err := progressAtLeast(bt.rb, 0, at); err != nil {
		t.Fatalf("no progress after the cut: %v\nreceiver: %s\nsender: %s", err, diag(bt.rb), diag(bt.sb))
	}
	t.Logf("data flowing again %s after the cable was back", time.Since(restored).Round(100*time.Millisecond))
	r := bt.finish()
	t.Logf("sender states %v", r.sendState)
	return r
}

func reconnected(states []string) bool {
	for _, s := range states {
		if s == "reconnecting" {
			return true
		}
	}
	return false
}

// TestBrowsersLinkCut5s is TestLinkCut5s between two browsers.
func TestBrowsersLinkCut5s(t *testing.T) {
	r := browserCut(t, 5*time.Second)
	t.Logf("reconnected: receiver %v, sender %v", reconnected(r.states), reconnected(r.sendState))
}

// TestBrowsersLinkCutRestartsConnection is TestLinkCutRestartsConnection
// between two browsers: the pages must go through "reconnecting", build a
// new connection and finish.
func TestBrowsersLinkCutRestartsConnection(t *testing.T) {
	r := browserCut(t, 10*time.Second)
	if !reconnected(r.states) && !reconnected(r.sendState) {
		t.Fatalf("no page went through reconnecting: receiver %v, sender %v", r.states, r.sendState)
	}
}

// TestBrowsersThroughCoturn: `ferry serve --turn-url … --turn-secret …`
// without a bundled relay hands the pages coturn's URLs and credentials;
// behind symmetric NATs the file can only go through coturn.
func TestBrowsersThroughCoturn(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Symmetric}, netlab.HomeSpec{Name: "b", NAT: netlab.Symmetric})
	secret := "coturn-secret-" + t.Name()
	ct := in.Coturn(secret)
	srv := in.Serve(ferryBin, "--turn-listen", "", "--turn-url", coturnURLs, "--turn-secret", secret)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := startBrowserTransfer(t, ctx, in, srv, size).finish()
	if r.path != "relay" {
		t.Fatalf("path %q, want relay", r.path)
	}
	overUDP(t, in)
	if n := coturnAllocations(ct, ""); n == 0 {
		t.Fatalf("coturn granted no allocation:\n%s", ct.Stdout.Tail(40))
	} else {
		t.Logf("coturn granted %d allocations", n)
	}
}
