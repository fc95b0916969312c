package netlab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/browsertest"
	"github.com/ferrydev/ferry/internal/netlab"
)

// Page scripts. The receiver saves into the origin-private file system in
// place of the file the save dialog would return; every page records the
// states it goes through (data-state on <body>) so a test can tell it
// reconnected, and the paths its badge shows (data-path on #path), with
// the time of each change.
const (
	stubSavePickerOPFS = `window.showSaveFilePicker = async (o) => {
  const root = await navigator.storage.getDirectory();
  return root.getFileHandle(o.suggestedName, { create: true });
};`
	recordStates = `window.__netlabStates = [];
window.__netlabPaths = [];
new MutationObserver(() => {
  const s = document.body && document.body.dataset.state;
  const a = window.__netlabStates;
  if (s && a[a.length - 1] !== s) a.push(s);
  const e = document.getElementById("path");
  const p = e ? e.dataset.path : "";
  const b = window.__netlabPaths;
  if (p && (b.length === 0 || b[b.length - 1].path !== p)) b.push({ path: p, t: Date.now() });
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state", "data-path"] });`
)

// pagePoll bounds each wait on a page.
const pagePoll = 90 * time.Second

func onNewDocument(t testing.TB, b context.Context, js string) {
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

// serveAudited starts the lab's ferry server with its audit log on
// stdout, where the pages' reports (path, bytes, outcome) can be read.
func serveAudited(in *netlab.Internet, args ...string) *netlab.Server {
	return in.Serve(ferryBin, append([]string{"--audit", "-"}, args...)...)
}

// browserTransfer is a transfer between two Chromium pages in two homes.
type browserTransfer struct {
	t        *testing.T
	in       *netlab.Internet
	srv      *netlab.Server
	sb, rb   context.Context
	name     string
	want     string // sha256 hex
	size     int64
	accepted time.Time
	doneAt   time.Time // when finish saw the receiver page done
}

// startBrowserTransfer opens the send page in home a's browser, picks a
// fresh random file, opens the link in home b's browser and accepts.
func startBrowserTransfer(t *testing.T, ctx context.Context, in *netlab.Internet, srv *netlab.Server, size int64) *browserTransfer {
	t.Helper()
	return startBrowserTransferWith(t, ctx, in, srv, size, "")
}

func startBrowserTransferWith(t *testing.T, ctx context.Context, in *netlab.Internet, srv *netlab.Server, size int64, extra string) *browserTransfer {
	t.Helper()
	src, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	bt := &browserTransfer{t: t, in: in, srv: srv, name: "payload.bin", want: fmt.Sprintf("%x", sum), size: size}
	countPaths(in)
	bt.sb = in.Home("a").Host.Browser(ctx, srv.URL)
	bt.rb = in.Home("b").Host.Browser(ctx, srv.URL)
	browsertest.LogConsole(t, bt.sb, "sender")
	browsertest.LogConsole(t, bt.rb, "receiver")
	onNewDocument(t, bt.sb, recordStates+extra)
	onNewDocument(t, bt.rb, recordStates+stubSavePickerOPFS+extra)
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
	// The page uses the link up only on a person's click (chromedp's is a
	// real input event).
	if st, err := waitState(bt.rb, "ready", "error"); err != nil || st != "ready" {
		t.Fatalf("receiver state %q (%v), want ready\nreceiver: %s", st, err, diag(bt.rb))
	}
	if err := chromedp.Do(bt.rb, chromedp.Click(chromedp.ID("receive"))); err != nil {
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

// pathChange is one change of a page's direct/relay badge.
type pathChange struct {
	Path string `json:"path"`
	T    int64  `json:"t"` // Unix milliseconds
}

// browserResult is what the pages reported.
type browserResult struct {
	path      string // the receiver's #path data-path at the end
	sendPath  string
	elapsed   time.Duration // accept to done
	mbps      float64
	states    []string // the receiver's states
	sendState []string
	// paths and sendPaths are the badges' changes.
	paths, sendPaths []pathChange
	// reports are the pages' reports in the server's audit log, by role.
	reports map[string]audit.Event
	// bytes is what left home a's router over UDP, straight to home b's
	// public address (direct) and to the server (relay).
	bytes pathBytes
}

// finish waits for both pages to be done, checks the received file's
// SHA-256 and both pages' path.
func (bt *browserTransfer) finish() browserResult {
	t := bt.t
	t.Helper()
	if st, err := waitState(bt.rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(bt.rb), diag(bt.sb))
	}
	bt.doneAt = time.Now()
	elapsed := bt.doneAt.Sub(bt.accepted)
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
	r.paths, _ = pageEval[[]pathChange](bt.rb, `window.__netlabPaths || []`)
	r.sendPaths, _ = pageEval[[]pathChange](bt.sb, `window.__netlabPaths || []`)
	r.bytes = countedPaths(t, bt.in)
	t.Logf("browsers: path %s, %.1f MB/s (%d MiB, accept to done %s); receiver states %v",
		r.path, r.mbps, bt.size>>20, elapsed.Round(time.Millisecond), r.states)
	t.Logf("badges: sender %s, receiver %s; out of home a over UDP: %d bytes direct, %d to the relay",
		timeline(r.sendPaths, bt.accepted), timeline(r.paths, bt.accepted), r.bytes.direct, r.bytes.relay)
	if r.path != r.sendPath {
		t.Fatalf("receiver page shows path %q, sender page %q", r.path, r.sendPath)
	}
	r.reports = reports(t, bt.srv)
	for role, e := range r.reports {
		if e.Event != audit.TransferCompleted || e.Bytes != bt.size {
			t.Errorf("%s reported %+v, want a completed transfer of %d bytes", role, e, bt.size)
		}
		// The report names the path that carried most of the bytes, as
		// home a's router counted them.
		if want := r.bytes.most(); e.Path != want {
			t.Errorf("%s reported path %q; %s carried most bytes (%d direct, %d relayed)", role, e.Path, want, r.bytes.direct, r.bytes.relay)
		}
	}
	return r
}

// timeline formats badge changes with their time after start.
func timeline(cs []pathChange, start time.Time) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" → ")
		}
		fmt.Fprintf(&b, "%s at %+.1fs", c.Path, float64(c.T-start.UnixMilli())/1000)
	}
	if len(cs) == 0 {
		return "(none)"
	}
	return b.String()
}

// reports waits (bounded) for both pages' end-of-transfer reports in the
// server's audit log (serveAudited) and returns them by role.
func reports(t *testing.T, srv *netlab.Server) map[string]audit.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]audit.Event{}
	_, _, err := srv.Stdout.Wait(ctx, 0, func(line string) bool {
		var e audit.Event
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.Event, "transfer_") {
			got[e.Role] = e
		}
		return len(got) == 2
	})
	if err != nil {
		t.Fatalf("reports in the audit log: %+v (%v); start the server with serveAudited", got, err)
	}
	return got
}

// pathBytes are the UDP bytes that left home a by path.
type pathBytes struct{ direct, relay int64 }

// most is the path that carried most bytes.
func (p pathBytes) most() string {
	if p.relay > p.direct {
		return "relay"
	}
	return "direct"
}

// countPaths makes home a's router count, per path, the UDP bytes it
// sends out: to home b's public address (the direct path) and to the
// server (the TURN relay; signaling is TCP). The rules sit where packets
// leave (after the filter, before the NAT) and have no target: they only
// count.
func countPaths(in *netlab.Internet) {
	a, b := in.Home("a"), in.Home("b")
	for _, dst := range []string{b.PublicIP.String(), netlab.ServerIP} {
		a.Router.IPTables("-t", "mangle", "-A", "POSTROUTING", "-o", a.WAN(), "-p", "udp", "-d", dst)
	}
}

// countedPaths reads countPaths' counters.
func countedPaths(t *testing.T, in *netlab.Internet) pathBytes {
	t.Helper()
	a, b := in.Home("a"), in.Home("b")
	out, err := a.Router.Exec("iptables", "-w", "-t", "mangle", "-L", "POSTROUTING", "-v", "-x", "-n")
	if err != nil {
		t.Fatal(err)
	}
	var p pathBytes
	for _, line := range strings.Split(out, "\n") {
		// pkts bytes prot opt in out source destination (no target)
		f := strings.Fields(line)
		if len(f) != 8 || f[5] != a.WAN() || f[2] != "udp" && f[2] != "17" {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[7] {
		case b.PublicIP.String():
			p.direct += n
		case netlab.ServerIP:
			p.relay += n
		}
	}
	return p
}

// TestBrowsersBehindNATs runs cases (a), (b) and (c) with two Chromium
// pages, each running inside its home: cone NATs connect directly,
// symmetric NATs through the relay, and a home without UDP through the
// relay over TCP. Both pages must end showing that path, and report it:
// it must also be the path that carried most of the file, as home a's
// router counted the bytes (finish). Chromium may start on a relayed pair
// when its check answers before the direct one (a lost or late packet)
// and move to the direct pair within a second (TestBrowsersMoveToDirect);
// the pages follow it.
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
			srv := serveAudited(in)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r := startBrowserTransfer(t, ctx, in, srv, size).finish()
			if r.path != c.path {
				t.Fatalf("path %q, want %s", r.path, c.path)
			}
			for role, e := range r.reports {
				if e.Path != c.path {
					t.Fatalf("%s reported path %q, want %s", role, e.Path, c.path)
				}
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

// browserCutResult is what a transfer between browsers with a cut showed.
type browserCutResult struct {
	browserResult
	// flowing is how long after the link was back data moved again; done
	// how long after the cut the receiver page was done.
	flowing, done time.Duration
	server        *netlab.Server
}

// browserCut sends 20 MiB between two Chromium pages in cone-NAT homes,
// breaks home a's network for outage at 40% (how: a Wi-Fi drop, or the
// uplink cut and back with a new public address), and checks the file
// arrives intact.
func browserCut(t *testing.T, outage time.Duration, how cut) browserCutResult {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone})
	srv := serveAudited(in)
	a := in.Home("a")
	a.Host.MustExec("tc", "qdisc", "add", "dev", a.LAN(), "root", "tbf", "rate", "24mbit", "burst", "64kb", "latency", "100ms")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bt := startBrowserTransfer(t, ctx, in, srv, size)
	at, err := progressAtLeast(bt.rb, 0.4, 0)
	if err != nil {
		t.Fatalf("progress: %v\n%s", err, diag(bt.rb))
	}
	setLink := a.SetLAN
	if how == cutRenumber {
		setLink = a.SetUplink
	}
	setLink(false)
	cut := time.Now()
	if how == cutRenumber {
		a.Renumber(netip.MustParseAddr("198.18.0.99"))
	}
	time.Sleep(outage) // the outage is the scenario, not a synchronisation
	setLink(true)
	restored := time.Now()
	t.Logf("cut home a at %.0f%% at %s for %s", at*100/size, cut.Format("15:04:05.000"), restored.Sub(cut).Round(time.Millisecond))
	if _, err := progressAtLeast(bt.rb, 0, at); err != nil {
		t.Fatalf("no progress after the cut: %v\nreceiver: %s\nsender: %s\nserver: %s", err, diag(bt.rb), diag(bt.sb), srv.Stderr.Tail(30))
	}
	flowing := time.Since(restored)
	t.Logf("data flowing again %s after the link was back", flowing.Round(100*time.Millisecond))
	r := bt.finish()
	done := bt.doneAt.Sub(cut)
	t.Logf("receiver done %s after the cut; sender states %v", done.Round(100*time.Millisecond), r.sendState)
	return browserCutResult{browserResult: r, flowing: flowing, done: done, server: srv}
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
	r := browserCut(t, 5*time.Second, cutLAN)
	t.Logf("reconnected: receiver %v, sender %v", reconnected(r.states), reconnected(r.sendState))
}

// TestBrowsersLinkCutRestartsConnection is TestLinkCutRestartsConnection
// between two browsers: the pages must go through "reconnecting", build a
// new connection and finish.
func TestBrowsersLinkCutRestartsConnection(t *testing.T) {
	r := browserCut(t, 10*time.Second, cutLAN)
	if !reconnected(r.states) && !reconnected(r.sendState) {
		t.Fatalf("no page went through reconnecting: receiver %v, sender %v", r.states, r.sendState)
	}
}

// TestBrowsersNewAddressResumesSignaling is TestNewAddressResumesSignaling
// between two browsers: home a's uplink is cut for 5 s and comes back with
// a new public address, so the sender page's WebSocket is dead without a
// word (its NAT mapping went with the old address; a page cannot send
// WebSocket pings). After losing the connection the page asks the server
// for ICE servers ({"type":"ice"}); with no answer in 5 s it closes the
// WebSocket and resumes the session on a new one (PROTOCOL §2.4), the
// receiver page follows, and the transfer continues from the verified
// chunks.
func TestBrowsersNewAddressResumesSignaling(t *testing.T) {
	r := browserCut(t, 5*time.Second, cutRenumber)
	if !reconnected(r.sendState) {
		t.Fatalf("the sender page never went through reconnecting: %v", r.sendState)
	}
	// The server logs each resumption; wait for the sender's line, then count.
	waitLine(r.server.Stderr, func(l string) bool { return strings.Contains(l, "kind=resumed") && strings.Contains(l, "role=S") })
	resumed := map[string]int{}
	for _, l := range r.server.Stderr.All() {
		if strings.Contains(l, "kind=resumed") {
			for _, role := range []string{"S", "R"} {
				if strings.Contains(l, "role="+role) {
					resumed[role]++
				}
			}
		}
	}
	if resumed["S"] == 0 {
		t.Fatalf("the sender page never resumed its signaling session:\n%s", r.server.Stderr.Tail(30))
	}
	t.Logf("signaling sessions resumed: sender %d, receiver %d", resumed["S"], resumed["R"])
	// Without the probe the page would wait on its dead WebSocket until
	// the browser gives the TCP connection up (many minutes).
	if r.flowing > 20*time.Second {
		t.Errorf("data moved again only %s after the link was back", r.flowing)
	}
}

// TestBrowsersMoveToDirect: the direct path between the homes opens only
// after the transfer started (router a drops UDP to home b's public
// address until the receiver has 20%), so ICE first connects through the
// relay. Chromium keeps checking the better direct pair and moves to it
// once it answers; the pages must follow: both badges go from relay to
// direct, and the reports name the path that carried most of the bytes.
func TestBrowsersMoveToDirect(t *testing.T) {
	lab := netlab.New(t)
	in := lab.Internet(netlab.HomeSpec{Name: "a", NAT: netlab.Cone}, netlab.HomeSpec{Name: "b", NAT: netlab.Cone})
	srv := serveAudited(in)
	a, b := in.Home("a"), in.Home("b")
	// 24 Mbit/s: about 7 s for the file, so the move happens mid-transfer.
	a.Host.MustExec("tc", "qdisc", "add", "dev", a.LAN(), "root", "tbf", "rate", "24mbit", "burst", "64kb", "latency", "100ms")
	block := []string{"FORWARD", "-o", a.WAN(), "-p", "udp", "-d", b.PublicIP.String(), "-j", "DROP"}
	a.Router.IPTables(append([]string{"-I"}, block...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bt := startBrowserTransfer(t, ctx, in, srv, size)
	at, err := progressAtLeast(bt.rb, 0.2, 0)
	if err != nil {
		t.Fatalf("progress: %v\n%s", err, diag(bt.rb))
	}
	for name, p := range map[string]context.Context{"sender": bt.sb, "receiver": bt.rb} {
		if path, _ := pageEval[string](p, `document.getElementById("path").dataset.path || ""`); path != "relay" {
			t.Fatalf("with the direct path blocked the %s page shows %q, want relay", name, path)
		}
	}
	a.Router.IPTables(append([]string{"-D"}, block...)...)
	opened := time.Now()
	t.Logf("direct path opened at %.0f%%", at*100/size)
	// The badges move to direct while the transfer runs.
	for name, p := range map[string]context.Context{"sender": bt.sb, "receiver": bt.rb} {
		if _, err := chromedp.Run(p, chromedp.Poll[bool](`document.getElementById("path").dataset.path === "direct" || document.body.dataset.state === "done"`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pagePoll))); err != nil {
			t.Fatalf("%s page: %v\n%s", name, err, diag(p))
		}
	}
	r := bt.finish()
	for name, cs := range map[string][]pathChange{"sender": r.sendPaths, "receiver": r.paths} {
		if len(cs) < 2 || cs[0].Path != "relay" || cs[len(cs)-1].Path != "direct" {
			t.Fatalf("the %s page's badge went %s, want relay then direct", name, timeline(cs, bt.accepted))
		}
		t.Logf("%s page showed direct %s after the direct path opened", name, time.UnixMilli(cs[len(cs)-1].T).Sub(opened).Round(100*time.Millisecond))
	}
	if r.bytes.relay == 0 || r.bytes.direct < size/2 {
		t.Fatalf("home a sent %d bytes direct and %d to the relay; want both, most direct", r.bytes.direct, r.bytes.relay)
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
	srv := serveAudited(in, "--turn-listen", "", "--turn-url", coturnURLs, "--turn-secret", secret)
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
