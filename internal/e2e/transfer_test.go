package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

type transferCase struct {
	size     int64
	relay    bool   // sender in relay-only mode
	sink     string // "opfs" (File System Access) or "download" (service worker)
	corrupt  string // JS list of chunks the sender corrupts once, e.g. `[{file:0,index:3}]`
	wantPath string
	// during runs after the receiver accepted, while bytes flow.
	during func(t testing.TB, sb, rb context.Context)
	// check runs after both sides are done.
	check func(t testing.TB, sb, rb context.Context)
}

// runTransfer sends one random file from one browser to another through a
// real server and checks the received bytes by SHA-256.
func runTransfer(t testing.TB, tc transferCase) (mbps float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, base, alog := startServerAudited(t, nil)
	dir := t.TempDir()
	src, want := randomFile(t, dir, "random.bin", tc.size)

	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	dl := t.TempDir()
	switch tc.sink {
	case "opfs":
		onNewDocument(t, rb, stubSavePickerOPFS)
	case "download":
		onNewDocument(t, rb, noFSAccess)
		setDownloads(t, rb, dl)
	}
	if tc.corrupt != "" {
		onNewDocument(t, sb, `window.ferryTest = { corrupt: `+tc.corrupt+` };`)
	}
	url := base + "/"
	if tc.relay {
		url += "?relay=1"
	}
	link := sendFiles(t, sb, url, src)
	t.Logf("link %s", link)

	downloads := chromedp.BrowserEvents(rb, browser.DownloadProgress)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(rb), diag(sb))
	}
	offer := text(rb, "file-list")
	if want := "random.bin"; !contains(offer, want) {
		t.Fatalf("offer %q does not list %q", offer, want)
	}
	start := time.Now()
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatalf("accept: %v", err)
	}
	// The first chunk is not held back by hashing the file first.
	if _, err := chromedp.Run(rb, chromedp.Poll[bool](`Number((document.getElementById("progress") || {dataset: {}}).dataset.done || 0) > 0`,
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout))); err != nil {
		t.Fatalf("no first byte: %v\nreceiver: %s", err, diag(rb))
	}
	t.Logf("first verified bytes %s after Accept", time.Since(start).Round(time.Millisecond))
	if tc.during != nil {
		tc.during(t, sb, rb)
	}
	st, err := waitState(rb, "done", "error", "canceled")
	if err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(rb), diag(sb))
	}
	elapsed := time.Since(start)
	if st, err := waitState(sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v): %s", st, err, text(sb, "error"))
	}
	var got string
	switch tc.sink {
	case "opfs":
		got = opfsSHA256(t, rb, "random.bin")
	case "download":
		for ev, err := range downloads {
			if err != nil {
				t.Fatalf("waiting for the download: %v", err)
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				break
			}
			if ev.State == browser.DownloadProgressStateCanceled {
				t.Fatal("the browser canceled the download")
			}
		}
		got = fileSHA256(t, filepath.Join(dl, "random.bin"))
	}
	if got != want {
		t.Fatalf("received file sha256 %s, sent %s", got, want)
	}
	for name, b := range map[string]context.Context{"sender": sb, "receiver": rb} {
		path, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("path").dataset.path || ""`))
		if tc.wantPath != "" && path != tc.wantPath {
			t.Errorf("%s shows path %q, want %q", name, path, tc.wantPath)
		}
	}
	for role, e := range waitReports(t, alog) {
		if e.Event != "transfer_completed" || e.Bytes != tc.size || e.Files != 1 {
			t.Errorf("%s reported %+v, want a completed transfer of %d bytes", role, e, tc.size)
		}
		if tc.wantPath != "" && e.Path != tc.wantPath {
			t.Errorf("%s reported path %q, want %q", role, e.Path, tc.wantPath)
		}
		if len(e.Names) > 0 {
			t.Errorf("%s reported file names", role)
		}
	}
	if tc.check != nil {
		tc.check(t, sb, rb)
	}
	mbps = float64(tc.size) / 1e6 / elapsed.Seconds()
	t.Logf("%d bytes in %s: %.1f MB/s", tc.size, elapsed.Round(time.Millisecond), mbps)
	return mbps
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestDirectFileSystemAccess(t *testing.T) {
	runTransfer(t, transferCase{
		size: 50 << 20, sink: "opfs", wantPath: "direct",
		check: func(t testing.TB, _, rb context.Context) {
			// BLAKE3 speed in the receiver's worker, for the log (and a sanity
			// floor: the WASM hasher must be running, not a fallback).
			mbps, err := chromedp.Run(rb, chromedp.Evaluate[float64](`ferryDebug.bench(64)`, chromedp.EvalAwaitPromise))
			if err != nil || mbps < 50 {
				t.Fatalf("BLAKE3 in the browser worker: %.0f MB/s (%v)", mbps, err)
			}
			t.Logf("BLAKE3 in the browser worker: %.0f MB/s", mbps)
		},
	})
}

func TestDirectServiceWorkerDownload(t *testing.T) {
	runTransfer(t, transferCase{size: 50 << 20, sink: "download", wantPath: "direct"})
}

func TestRelayOnly(t *testing.T) {
	runTransfer(t, transferCase{size: 50 << 20, relay: true, sink: "opfs", wantPath: "relay"})
}

func TestCorruptChunkIsRefetched(t *testing.T) {
	runTransfer(t, transferCase{
		size: 5 << 20, sink: "download",
		// 5 MiB is 81 chunks: one early, one just before the end (its resend
		// arrives after the sender's "done").
		corrupt: `[{file:0,index:3},{file:0,index:79}]`,
		check: func(t testing.TB, _, rb context.Context) {
			n, err := chromedp.Run(rb, chromedp.Evaluate[int](`ferryDebug.flow.refetched`))
			if err != nil || n != 2 {
				t.Fatalf("receiver re-fetched %d chunks (%v), want 2", n, err)
			}
		},
	})
}

// waitProgress waits until the receiver has verified more than n bytes.
func waitProgress(t testing.TB, sb, rb context.Context, n int) {
	t.Helper()
	js := fmt.Sprintf(`Number(document.getElementById("progress").dataset.done || 0) > %d`, n)
	if _, err := chromedp.Run(rb, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout))); err != nil {
		t.Fatalf("no progress past %d bytes: %v\nreceiver: %s\nsender: %s", n, err, diag(rb), diag(sb))
	}
}

// A broken peer connection mid-transfer: the sender builds a new
// generation and the transfer continues from the verified chunks.
func TestReconnectNewGeneration(t *testing.T) {
	runTransfer(t, transferCase{
		size: 50 << 20, sink: "opfs",
		during: func(t testing.TB, sb, rb context.Context) {
			waitProgress(t, sb, rb, 10<<20)
			if err := chromedp.Do(sb, chromedp.Evaluate[chromedp.Void](`ferryDebug.flow.current.fail("test: connection cut")`)); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t testing.TB, sb, rb context.Context) {
			gen, err := chromedp.Run(rb, chromedp.Evaluate[int](`ferryDebug.flow.generation`))
			if err != nil || gen < 2 {
				t.Fatalf("receiver finished on generation %d (%v), want a new one", gen, err)
			}
		},
	})
}

// Signaling and the peer connection both lost: both sides resume the
// session over new WebSockets, then build a new generation.
func TestReconnectResumeSession(t *testing.T) {
	runTransfer(t, transferCase{
		size: 50 << 20, sink: "opfs",
		during: func(t testing.TB, sb, rb context.Context) {
			waitProgress(t, sb, rb, 10<<20)
			if err := chromedp.Do(sb, chromedp.Evaluate[chromedp.Void](`ferryDebug.flow.session.sig.close(); ferryDebug.flow.current.fail("test: everything cut")`)); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t testing.TB, sb, rb context.Context) {
			gen, err := chromedp.Run(rb, chromedp.Evaluate[int](`ferryDebug.flow.generation`))
			if err != nil || gen < 2 {
				t.Fatalf("receiver finished on generation %d (%v), want a new one", gen, err)
			}
		},
	})
}
