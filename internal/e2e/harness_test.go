package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/browsertest"
	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/servertest"
	"github.com/ferrydev/ferry/internal/transfer"
)

// clock is a settable clock for the server (ticket expiry without sleeping).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startServer runs `ferry serve` in-process on loopback with its bundled
// TURN relay and returns its base URL.
func startServer(t testing.TB, now func() time.Time) (*server.Server, string) {
	srv, base, _ := startServerAudited(t, now)
	return srv, base
}

// startServerAudited is startServer that also returns the audit log, which
// records the peers' reports (path, bytes, outcome).
func startServerAudited(t testing.TB, now func() time.Time) (*server.Server, string, *audit.Log) {
	return startServerWith(t, now, nil)
}

// startServerWith is startServerAudited with changes to the configuration
// (sign-in, size limit, audit names, ...).
func startServerWith(t testing.TB, now func() time.Time, change func(*config.Serve)) (*server.Server, string, *audit.Log) {
	t.Helper()
	cfg := servertest.Config()
	if change != nil {
		change(&cfg)
	}
	alog := audit.New(nil, cfg.AuditNames, 200, now)
	srv := servertest.Start(t, cfg, server.Options{Now: now, Logger: testLogger(t), Audit: alog})
	return srv, srv.URL().String(), alog
}

// waitReports waits (bounded) until the audit log holds a transfer record
// of both roles and returns them by role.
func waitReports(t testing.TB, alog *audit.Log) map[string]audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := map[string]audit.Event{}
		for _, e := range alog.Recent(200) {
			if strings.HasPrefix(e.Event, "transfer_") {
				got[e.Role] = e
			}
		}
		if len(got) == 2 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports in the audit log: %+v, want one per role", got)
		}
		<-tick.C
	}
}

// waitNoConns waits (bounded) until the server holds no signaling
// connection: peers leave, and the server closes their WebSockets, a
// moment after the transfer ended.
func waitNoConns(t testing.TB, srv *server.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n := srv.Signaling().Conns(); n != 0; n = srv.Signaling().Conns() {
		if time.Now().After(deadline) {
			t.Errorf("%d signaling connections still open", n)
			return
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
}

// testLogger sends the server's debug log to the test log while it runs
// (set FERRY_E2E_SERVER_LOG=1 to see it).
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("FERRY_E2E_SERVER_LOG") == "" {
		return nil
	}
	logf := browsertest.LiveLog(t)
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logf("[server] %s", strings.TrimSpace(string(p)))
		return len(p), nil
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// newBrowser starts a headless Chromium whose console is copied to the
// test log (prefixed with name) while the test runs.
func newBrowser(t testing.TB, ctx context.Context, name string) context.Context {
	t.Helper()
	b := browsertest.New(t, ctx, browsertest.Options{})
	browsertest.LogConsole(t, b, name)
	return b
}

// sendResult is what a Go sender's peer.Send returned.
type sendResult struct {
	res *peer.Result
	err error
}

// goSend runs the Go sender (what `ferry send` runs) of the file at src,
// named name, through the server at base in the background, and returns its
// link once it has one, and the channel its result arrives on.
func goSend(t testing.TB, ctx context.Context, base, src, name string, o peer.SendOptions) (string, <-chan sendResult) {
	t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	server, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	links := make(chan string, 1)
	cfg := &peer.Config{Server: server, Events: peer.Events{Link: func(l string, _ time.Time) { links <- l }}}
	sent := make(chan sendResult, 1)
	go func() {
		res, err := peer.Send(ctx, cfg, []transfer.SourceFile{{Path: name, Local: src, Size: fi.Size(), Mtime: fi.ModTime()}}, o)
		sent <- sendResult{res, err}
	}()
	select {
	case link := <-links:
		return link, sent
	case r := <-sent:
		t.Fatalf("go sender: %v", r.err)
	case <-ctx.Done():
		t.Fatal("no link from the go sender")
	}
	return "", nil
}

// randomFile writes size random bytes to dir/name and returns the path
// and its SHA-256.
func randomFile(t testing.TB, dir, name string, size int64) (string, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, hex.EncodeToString(h.Sum(nil))
}

func fileSHA256(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// onNewDocument runs js in every document the tab loads from now on.
func onNewDocument(t testing.TB, b context.Context, js string) {
	t.Helper()
	if _, err := chromedp.Call(b, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		t.Fatalf("add script: %v", err)
	}
}

// Stubs that choose the receive path. OPFS stands in for the file the save
// dialog would return; without both pickers the page must stream through
// its service worker.
const (
	stubSavePickerOPFS = `window.showSaveFilePicker = async (o) => {
  const root = await navigator.storage.getDirectory();
  return root.getFileHandle(o.suggestedName, { create: true });
};`
	noFSAccess = `for (const o of [window, Window.prototype]) {
  try { delete o.showSaveFilePicker; delete o.showDirectoryPicker; } catch (e) {}
}`
)

// pollTimeout bounds each wait on a page; longer than chromedp's default
// so a loaded CI machine (other browser tests in parallel) does not flake,
// shorter than the tests' own deadlines so failures still show diagnostics.
const pollTimeout = 90 * time.Second

// waitState polls the page's data-state until it is one of states and
// returns it (the page sets it on every step; no sleeping).
func waitState(b context.Context, states ...string) (string, error) {
	js := fmt.Sprintf(`(() => { const s = document.body && document.body.dataset.state; return %s.includes(s) ? s : null; })()`, jsArray(states))
	return chromedp.Run(b, chromedp.Poll[string](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
}

func jsArray(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// diag describes a page's state for failure messages.
func diag(b context.Context) string {
	s, err := chromedp.Run(b, chromedp.Evaluate[string](`JSON.stringify({state: document.body.dataset.state, status: document.getElementById("status").textContent,
  error: document.getElementById("error").textContent, progress: (document.getElementById("progress-text") || {}).textContent,
  path: document.getElementById("path").textContent, flow: ferryDebug && ferryDebug.flow && ((ferryDebug.flow.sender || ferryDebug.flow.receiver || {}).stats)})`))
	if err != nil {
		return err.Error()
	}
	return s
}

func text(b context.Context, id string) string {
	s, _ := chromedp.Run(b, chromedp.Evaluate[string](fmt.Sprintf(`(document.getElementById(%q) || {}).textContent || ""`, id)))
	return strings.ReplaceAll(s, "\u00a0", " ") // sizes keep their units with no-break spaces
}

// sendFiles opens the send page, picks files and returns the link.
func sendFiles(t testing.TB, b context.Context, url string, files ...string) string {
	t.Helper()
	if err := chromedp.Do(b, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open send page: %v", err)
	}
	if err := chromedp.Do(b, chromedp.SetUploadFiles(chromedp.ID("file-input"), files)); err != nil {
		t.Fatalf("pick files: %v", err)
	}
	link, err := chromedp.Run(b, chromedp.Poll[string](
		`(() => { const v = document.getElementById("link").value; if (v) return v; const e = document.getElementById("error"); if (!e.hidden) throw new Error(e.textContent); return null; })()`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatalf("no link on the send page: %v (status %q)", err, text(b, "status"))
	}
	return link
}

// openLink opens a receive link in b and asks for the files as a person
// does: the page waits for a click on "Receive files" before it uses the
// link up, and chromedp's click is a real input event (trusted, like a
// person's).
func openLink(t testing.TB, b context.Context, link string) {
	t.Helper()
	if err := chromedp.Do(b, chromedp.Navigate(link)); err != nil {
		t.Fatalf("open link: %v", err)
	}
	if st, err := waitState(b, "ready", "error"); err != nil || st != "ready" {
		t.Fatalf("receive page state %q (%v), want ready: %s", st, err, text(b, "error"))
	}
	if err := chromedp.Do(b, chromedp.Click(chromedp.ID("receive"))); err != nil {
		t.Fatalf("click Receive files: %v", err)
	}
}

// setDownloads makes downloads of this browser land in dir, with events.
func setDownloads(t testing.TB, b context.Context, dir string) {
	t.Helper()
	yes := true
	if _, err := chromedp.CallBrowser(b, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &yes,
	}); err != nil {
		t.Fatalf("set download behavior: %v", err)
	}
}

// opfsSHA256 hashes a file in the page's origin-private file system.
func opfsSHA256(t testing.TB, b context.Context, name string) string {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
  const root = await navigator.storage.getDirectory();
  const f = await (await root.getFileHandle(%q)).getFile();
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
})()`, name)
	got, err := chromedp.Run(b, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("hash received file in OPFS: %v", err)
	}
	return got
}
