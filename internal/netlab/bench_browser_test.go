package netlab_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/netlab"
	"github.com/ferrydev/ferry/internal/procstat"
)

// The path benchmark's browser tools (BenchmarkPaths), each between a
// headless Chromium in A and one in B, started fresh for the measurement
// and closed after it:
//
//   - chromium-dc: the anchor, one plain RTCDataChannel between the two
//     Chromiums with no ferry code (ordered, reliable, 64 KiB messages,
//     about 8 MiB kept buffered); the bench carries offer and answer.
//   - chromium, chromium-relay: ferry's send page → ferry's receive page,
//     downloading through the service worker, direct or relay-only.
//   - chromium-go: the send page → `ferry receive`; go-chromium: `ferry
//     send` → the receive page.
//
// A receiving page's rate is timed as the anchor's is, from the first
// chunk's arrival to the last's (the click-to-saved-file rate is logged
// beside it); a Go receiver's from its connection to its done event.
// A browser side's CPU time is that of Chromium's whole process tree, its
// "RSS" the peak of the tree's summed PSS (shared pages split between the
// processes that share them), sampled. NETLAB_BENCH_PROCS=1 prints each
// side's CPU time by Chromium process kind (browser, renderer, GPU,
// network service...).

// dcMessage and dcBuffered shape the anchor's sender: 64 KiB messages,
// refilled up to 8 MiB whenever the buffer drains below 6 MiB.
const (
	dcMessage  = 64 << 10
	dcBuffered = 8 << 20
	dcLow      = 6 << 20
)

// benchBrowser is one Chromium started for one measurement.
type benchBrowser struct {
	ctx context.Context
	pid int
}

// browser starts Chromium in ns, with the lab server's origin treated as
// secure, and returns it with its pid.
func (bp *benchPath) browser(ctx context.Context, ns *netlab.NS) benchBrowser {
	b := ns.Browser(ctx, bp.srv.URL)
	return benchBrowser{ctx: b, pid: chromedp.FromContext(b).Browser.Process().Pid}
}

// closeBrowsers closes the browsers and waits until they are gone, so the
// next measurement's process trees are its own.
func closeBrowsers(bs ...benchBrowser) {
	for _, b := range bs {
		_ = chromedp.Cancel(b.ctx)
	}
}

// gatherJS waits for the ICE gathering of peer connection pc to complete:
// with host candidates only (no ICE servers) that is quick, and the
// descriptions then carry every candidate, so no trickling is needed.
const gatherJS = `const gathered = (pc) => new Promise((r) => {
  if (pc.iceGatheringState === "complete") return r();
  pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && r());
});`

// dcRun is chromium-dc.
func (bp *benchPath) dcRun(ctx context.Context) (measure, error) {
	p := bp.path
	sb, rb := bp.browser(ctx, p.A), bp.browser(ctx, p.B)
	defer closeBrowsers(sb, rb)
	for _, b := range []benchBrowser{sb, rb} {
		if err := chromedp.Do(b.ctx, chromedp.Navigate("about:blank")); err != nil {
			return measure{}, err
		}
	}
	offer, err := pageEval[string](sb.ctx, `(async () => {`+gatherJS+`
  const pc = new RTCPeerConnection();
  const ch = pc.createDataChannel("bench", { ordered: true });
  window.__pc = pc;
  window.__ch = ch;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return pc.localDescription.sdp;
})()`)
	if err != nil {
		return measure{}, fmt.Errorf("offer: %w", err)
	}
	// The receiver counts the bytes and times them from the first
	// message's arrival to the last's.
	answer, err := pageEval[string](rb.ctx, fmt.Sprintf(`(async (offer, total) => {`+gatherJS+`
  const pc = new RTCPeerConnection();
  window.__pc = pc;
  window.__rx = new Promise((resolve, reject) => {
    pc.ondatachannel = (e) => {
      const ch = e.channel;
      ch.binaryType = "arraybuffer";
      let n = 0, first = 0, firstLen = 0;
      ch.onmessage = (m) => {
        if (n === 0) { first = performance.now(); firstLen = m.data.byteLength; }
        n += m.data.byteLength;
        if (n >= total) resolve({ bytes: n, after: n - firstLen, ms: performance.now() - first });
      };
      ch.onclose = () => reject(new Error("channel closed after " + n + " bytes"));
    };
  });
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  return pc.localDescription.sdp;
})(%s, %d)`, strconv.Quote(offer), bp.size))
	if err != nil {
		return measure{}, fmt.Errorf("answer: %w", err)
	}
	if _, err := pageEval[bool](sb.ctx, fmt.Sprintf(`(async () => {
  await window.__pc.setRemoteDescription({ type: "answer", sdp: %s });
  const ch = window.__ch;
  if (ch.readyState !== "open") await new Promise((r, j) => { ch.onopen = r; ch.onclose = () => j(new Error("channel closed")); });
  return true;
})()`, strconv.Quote(answer))); err != nil {
		return measure{}, fmt.Errorf("connect: %w", err)
	}
	sm, rm := startTree(sb.pid), startTree(rb.pid)
	sent, err := pageEval[float64](sb.ctx, fmt.Sprintf(`(async (total) => {
  const ch = window.__ch;
  const msg = new Uint8Array(%d);
  crypto.getRandomValues(msg);
  ch.bufferedAmountLowThreshold = %d;
  let sent = 0;
  while (sent < total) {
    while (sent < total && ch.bufferedAmount < %d) {
      const n = Math.min(msg.length, total - sent);
      ch.send(n === msg.length ? msg : msg.subarray(0, n));
      sent += n;
    }
    if (sent < total) await new Promise((r) => { ch.onbufferedamountlow = r; });
  }
  return sent;
})(%d)`, dcMessage, dcLow, dcBuffered, bp.size))
	if err != nil {
		return measure{}, fmt.Errorf("send: %w", err)
	}
	rx, err := pageEval[dcReceived](rb.ctx, `window.__rx`)
	if err != nil {
		return measure{}, fmt.Errorf("receive: %w", err)
	}
	var m measure
	m.sendCPU, m.sendRSS = sm.end()
	m.recvCPU, m.recvRSS = rm.end()
	if int64(sent) != bp.size || rx.Bytes != bp.size || rx.MS <= 0 {
		return measure{}, fmt.Errorf("the data channel carried %d of %.0f sent bytes (want %d) in %.0f ms", rx.Bytes, sent, bp.size, rx.MS)
	}
	m.mbps = float64(rx.After) / 1e6 / (rx.MS / 1000)
	return m, nil
}

// dcReceived is what the anchor's receiver counted: all bytes, the bytes
// after the first message, and the milliseconds from the first message to
// the last.
type dcReceived struct {
	Bytes int64   `json:"bytes"`
	After int64   `json:"after"`
	MS    float64 `json:"ms"`
}

// relayParam adds ?relay=1 (relay-only) to a page's URL, before any
// fragment.
func relayParam(u string) string {
	base, frag, hasFrag := strings.Cut(u, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	base += sep + "relay=1"
	if hasFrag {
		base += "#" + frag
	}
	return base
}

// sendPage opens ferry's send page in b, picks the bench file and returns
// the receive link.
func (bp *benchPath) sendPage(b benchBrowser, relay bool) (string, error) {
	onNewDocument(bp.b, b.ctx, recordStates)
	u := bp.srv.URL + "/"
	if relay {
		u = relayParam(u)
	}
	if err := chromedp.Do(b.ctx, chromedp.Navigate(u)); err != nil {
		return "", fmt.Errorf("open send page: %w", err)
	}
	// NETLAB_BENCH_STRIPES=n: the page's test hook fixes the number of
	// connections (0: never stripe) instead of choosing it from the RTT.
	if n := os.Getenv("NETLAB_BENCH_STRIPES"); n != "" {
		if _, err := strconv.Atoi(n); err != nil {
			return "", fmt.Errorf("NETLAB_BENCH_STRIPES=%q: %w", n, err)
		}
		if _, err := pageEval[bool](b.ctx, `(() => { window.ferryTest = Object.assign(window.ferryTest || {}, { stripes: `+n+` }); return true; })()`); err != nil {
			return "", err
		}
	}
	if err := chromedp.Do(b.ctx, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{bp.file})); err != nil {
		return "", fmt.Errorf("pick file: %w", err)
	}
	link, err := chromedp.Run(b.ctx, chromedp.Poll[string](
		`(() => { const v = document.getElementById("link").value; if (v) return v; const e = document.getElementById("error"); if (!e.hidden) throw new Error(e.textContent); return null; })()`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pagePoll)))
	if err != nil {
		return "", fmt.Errorf("no link on the send page: %w\n%s", err, diag(b.ctx))
	}
	return link, nil
}

// receivePage is ferry's receive page in a browser, saving through the
// service worker (no File System Access) into its own download folder.
type receivePage struct {
	b         benchBrowser
	dir       string
	downloads iter.Seq2[browser.EventDownloadProgress, error]
}

// openReceivePage opens link in b and goes as far as the review of the
// offer (Receive files clicked, Accept not yet).
func (bp *benchPath) openReceivePage(b benchBrowser, link string, relay bool) (*receivePage, error) {
	onNewDocument(bp.b, b.ctx, recordStates+`for (const o of [window, Window.prototype]) {
  try { delete o.showSaveFilePicker; delete o.showDirectoryPicker; } catch (e) {}
}`)
	rp := &receivePage{b: b, dir: bp.b.TempDir()}
	yes := true
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: rp.dir, EventsEnabled: &yes,
	}); err != nil {
		return nil, fmt.Errorf("set download behavior: %w", err)
	}
	rp.downloads = chromedp.BrowserEvents(b.ctx, browser.DownloadProgress)
	if relay {
		link = relayParam(link)
	}
	if err := chromedp.Do(b.ctx, chromedp.Navigate(link)); err != nil {
		return nil, err
	}
	if st, err := waitState(b.ctx, "ready", "error"); err != nil || st != "ready" {
		return nil, fmt.Errorf("receive page state %q (%v), want ready\n%s", st, err, diag(b.ctx))
	}
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.ID("receive"))); err != nil {
		return nil, err
	}
	if st, err := waitState(b.ctx, "review", "error"); err != nil || st != "review" {
		return nil, fmt.Errorf("receive page state %q (%v), want review\n%s", st, err, diag(b.ctx))
	}
	return rp, nil
}

// accept clicks Accept and returns when the page is done and the download
// complete, with the time from the click to then; it checks the
// downloaded file's SHA-256 and the page's path badge.
// The page's rate is taken as the anchor's is, from its first chunk's
// arrival to its last's (the bytes after the first); the rate from the
// click to the saved file, which adds the connection's set-up and the
// download's end, is logged beside it.
func (rp *receivePage) accept(bp *benchPath, want string) (mbps float64, err error) {
	stopProfile := jsProfile(rp.b.ctx)
	start := time.Now()
	if err := chromedp.Do(rp.b.ctx, chromedp.Click(chromedp.ID("accept"))); err != nil {
		return 0, err
	}
	if st, err := waitState(rp.b.ctx, "done", "error", "canceled"); err != nil || st != "done" {
		return 0, fmt.Errorf("receive page ended in %q (%v)\n%s", st, err, diag(rp.b.ctx))
	}
	stopProfile()
	for ev, err := range rp.downloads {
		if err != nil {
			return 0, fmt.Errorf("waiting for the download: %w", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			return 0, errors.New("the browser canceled the download")
		}
	}
	elapsed := time.Since(start)
	got, err := netlab.FileSum(filepath.Join(rp.dir, filepath.Base(bp.file)))
	if err != nil || got != bp.sum {
		return 0, fmt.Errorf("the downloaded file differs (%v)", err)
	}
	if err := pathBadge(rp.b, want); err != nil {
		return 0, err
	}
	a, err := pageEval[dcReceived](rp.b.ctx, `(() => {
  const a = window.ferryDebug.flow.receiver.arrivals;
  return { bytes: 0, after: a.after, ms: a.last - a.first };
})()`)
	if err != nil || a.MS <= 0 || a.After <= 0 {
		return 0, fmt.Errorf("the page's chunk arrivals: %+v (%v)", a, err)
	}
	mbps = float64(a.After) / 1e6 / (a.MS / 1000)
	bp.b.Logf("%s: first to last chunk %.1f MB/s; click on Accept to saved file %.1f MB/s", bp.path.Spec.Name, mbps, float64(bp.size)/1e6/elapsed.Seconds())
	return mbps, nil
}

// jsProfile, with NETLAB_BENCH_JSPROFILE set to a folder, records a V8
// CPU profile of the receiving page's main thread from the click on Accept
// to the done state and writes it there as a .cpuprofile (DevTools format);
// the returned function stops it.
func jsProfile(ctx context.Context) func() {
	dir := os.Getenv("NETLAB_BENCH_JSPROFILE")
	if dir == "" {
		return func() {}
	}
	if _, err := chromedp.Call(ctx, profiler.Enable, cdp.Empty{}); err != nil {
		return func() {}
	}
	_, _ = chromedp.Call(ctx, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 200})
	if _, err := chromedp.Call(ctx, profiler.Start, cdp.Empty{}); err != nil {
		return func() {}
	}
	return func() {
		r, err := chromedp.Call(ctx, profiler.Stop, cdp.Empty{})
		if err != nil || r.Profile == nil {
			return
		}
		b, err := json.Marshal(r.Profile)
		if err != nil {
			return
		}
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("recv-%d.cpuprofile", time.Now().UnixNano())), b, 0o644)
	}
}

// pathBadge checks the page shows path want (direct or relay).
func pathBadge(b benchBrowser, want string) error {
	got, err := pageEval[string](b.ctx, `document.getElementById("path").dataset.path || ""`)
	if err != nil || got != want {
		return fmt.Errorf("page shows path %q (%v), want %q", got, err, want)
	}
	return nil
}

// sendPageDone waits until the send page is done.
func sendPageDone(b benchBrowser) error {
	if st, err := waitState(b.ctx, "done", "error", "canceled"); err != nil || st != "done" {
		return fmt.Errorf("send page ended in %q (%v)\n%s", st, err, diag(b.ctx))
	}
	return nil
}

// pagesRun is chromium and chromium-relay: the data phase runs from the
// click on Accept to the completed download.
func (bp *benchPath) pagesRun(ctx context.Context, relay bool) (measure, error) {
	p := bp.path
	sb, rb := bp.browser(ctx, p.A), bp.browser(ctx, p.B)
	defer closeBrowsers(sb, rb)
	want := "direct"
	if relay {
		want = "relay"
	}
	link, err := bp.sendPage(sb, relay)
	if err != nil {
		return measure{}, err
	}
	rp, err := bp.openReceivePage(rb, link, relay)
	if err != nil {
		return measure{}, err
	}
	sm, rm := startTree(sb.pid), startTree(rb.pid)
	mbps, err := rp.accept(bp, want)
	if err != nil {
		return measure{}, err
	}
	if err := sendPageDone(sb); err != nil {
		return measure{}, err
	}
	if err := pathBadge(sb, want); err != nil {
		return measure{}, err
	}
	m := measure{mbps: mbps}
	m.sendCPU, m.sendRSS = sm.end()
	m.recvCPU, m.recvRSS = rm.end()
	return m, nil
}

// pageToGo is chromium-go: the send page in A, `ferry receive` in B; the
// data phase runs from the receiver's first connection to its done event,
// as for ferry Go → Go.
func (bp *benchPath) pageToGo(ctx context.Context) (measure, error) {
	p := bp.path
	sb := bp.browser(ctx, p.A)
	defer closeBrowsers(sb)
	sm := startTree(sb.pid)
	link, err := bp.sendPage(sb, false)
	if err != nil {
		return measure{}, err
	}
	out := bp.b.TempDir()
	defer os.RemoveAll(out)
	recv := p.B.Start("ferry receive", netlab.Env(bp.b.TempDir(), "FERRY_LINK="+link),
		ferryBin, "receive", "--json", "--log-level", "info", "--out", out)
	done, _, err := netlab.WaitEvent(ctx, recv, 0, "done", nil)
	if err != nil {
		return measure{}, err
	}
	if err := recv.Wait(ctx); err != nil {
		return measure{}, fmt.Errorf("ferry receive: %w\n%s", err, recv.Describe())
	}
	if err := sendPageDone(sb); err != nil {
		return measure{}, err
	}
	var connected time.Time
	for _, e := range netlab.Events(recv) {
		if e.Event == "connected" && connected.IsZero() {
			connected = e.Time
		}
	}
	if got, err := netlab.FileSum(filepath.Join(out, filepath.Base(bp.file))); err != nil || got != bp.sum {
		return measure{}, fmt.Errorf("ferry receive's file differs (%v)", err)
	}
	if done.Path != "direct" || connected.IsZero() || !done.Time.After(connected) {
		return measure{}, fmt.Errorf("ferry receive: path %q, connected %v, done %v", done.Path, connected, done.Time)
	}
	m := measure{mbps: float64(done.Bytes) / 1e6 / done.Time.Sub(connected).Seconds()}
	m.sendCPU, m.sendRSS = sm.end()
	m.recvCPU, m.recvRSS, _ = recv.Usage()
	return m, nil
}

// goToPage is go-chromium: `ferry send` in A, the receive page in B; the
// data phase runs from the click on Accept to the completed download.
func (bp *benchPath) goToPage(ctx context.Context) (measure, error) {
	p := bp.path
	rb := bp.browser(ctx, p.B)
	defer closeBrowsers(rb)
	send := p.A.Start("ferry send", netlab.Env(bp.b.TempDir()),
		ferryBin, "send", "--json", "--log-level", "info", "--server", bp.srv.URL, bp.file)
	link, _, err := netlab.WaitEvent(ctx, send, 0, "link", nil)
	if err != nil {
		return measure{}, err
	}
	rp, err := bp.openReceivePage(rb, link.Link, false)
	if err != nil {
		return measure{}, err
	}
	rm := startTree(rb.pid)
	mbps, err := rp.accept(bp, "direct")
	if err != nil {
		return measure{}, err
	}
	if _, _, err := netlab.WaitEvent(ctx, send, 0, "done", nil); err != nil {
		return measure{}, err
	}
	if err := send.Wait(ctx); err != nil {
		return measure{}, fmt.Errorf("ferry send: %w\n%s", err, send.Describe())
	}
	m := measure{mbps: mbps}
	m.sendCPU, m.sendRSS, _ = send.Usage()
	m.recvCPU, m.recvRSS = rm.end()
	return m, nil
}

// treeMeter measures a process tree (a Chromium and its descendants): the
// CPU time it used from start to end, and the peak of its summed
// proportional set size, sampled every 100 ms.
type treeMeter struct {
	root int
	cpu0 time.Duration
	stop chan struct{}
	wg   sync.WaitGroup
	peak int64
	// kinds0 is the CPU time by process kind at the start, with
	// NETLAB_BENCH_PROCS set (see kindCPU).
	kinds0 map[string]time.Duration
}

func startTree(root int) *treeMeter {
	m := &treeMeter{root: root, stop: make(chan struct{})}
	if os.Getenv("NETLAB_BENCH_PROCS") != "" {
		m.kinds0 = kindCPU(root)
	}
	var rss int64
	m.cpu0, rss = treeUsage(root)
	m.peak = rss
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
				_, rss := treeUsage(root)
				m.peak = max(m.peak, rss)
			}
		}
	}()
	return m
}

// end stops the sampling and returns the CPU time since start and the peak
// RSS.
func (m *treeMeter) end() (time.Duration, int64) {
	close(m.stop)
	m.wg.Wait()
	cpu, rss := treeUsage(m.root)
	if m.kinds0 != nil {
		var parts []string
		for k, v := range kindCPU(m.root) {
			if d := v - m.kinds0[k]; d >= 10*time.Millisecond {
				parts = append(parts, fmt.Sprintf("%s %.2fs", k, d.Seconds()))
			}
		}
		slices.Sort(parts)
		fmt.Printf("(chromium %d: CPU by process: %s)\n", m.root, strings.Join(parts, ", "))
	}
	return cpu - m.cpu0, max(m.peak, rss)
}

// kindCPU is the CPU time of root's tree by process kind: Chromium's
// --type and --utility-sub-type (renderer, gpu-process, network.mojom...;
// "browser" for the root), to tell where a page's time goes. Processes
// that exited within the tree are left out.
func kindCPU(root int) map[string]time.Duration {
	out := map[string]time.Duration{}
	for pid, st := range processTree(root) {
		kind := "browser"
		if pid != root {
			kind = "other"
			cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			// Zygote-forked processes rewrite theirs, with spaces.
			for _, arg := range strings.FieldsFunc(string(cmd), func(r rune) bool { return r == 0 || r == ' ' }) {
				if v, ok := strings.CutPrefix(arg, "--type="); ok {
					kind = v
				}
				if v, ok := strings.CutPrefix(arg, "--utility-sub-type="); ok {
					kind = v
				}
			}
		}
		out[kind] += st.CPU
		if kind == "renderer" {
			// And by thread: which one is the bottleneck.
			tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
			for _, t := range tasks {
				tid, err := strconv.Atoi(t.Name())
				if err != nil {
					continue
				}
				ts, err := procstat.ReadThread(pid, tid)
				if err != nil {
					continue // ended meanwhile
				}
				comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/comm")
				out["renderer/"+strings.TrimSpace(string(comm))] += ts.CPU
			}
		}
	}
	return out
}

// processTree yields root and its descendants, each with its stat.
func processTree(root int) iter.Seq2[int, procstat.Stat] {
	return func(yield func(int, procstat.Stat) bool) {
		entries, _ := os.ReadDir("/proc")
		all := map[int]procstat.Stat{}
		children := map[int][]int{}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			st, err := procstat.Read(pid)
			if err != nil {
				continue // gone meanwhile
			}
			all[pid] = st
			children[st.PPID] = append(children[st.PPID], pid)
		}
		for todo := []int{root}; len(todo) > 0; {
			pid := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			st, ok := all[pid]
			if !ok {
				continue
			}
			if !yield(pid, st) {
				return
			}
			todo = append(todo, children[pid]...)
		}
	}
}

// treeUsage sums, over root and its descendants, the CPU time (their own,
// plus that of children that exited and were reaped within the tree) and
// the proportional set size: Chromium's processes share most of their
// pages, which a sum of their RSS would count once per process.
func treeUsage(root int) (time.Duration, int64) {
	var cpu time.Duration
	var rss int64
	for pid, s := range processTree(root) {
		cpu += s.CPU + s.Children
		rss += pss(pid)
	}
	return cpu, rss
}

// pss is a process's proportional set size in bytes (0 when it is gone).
func pss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
