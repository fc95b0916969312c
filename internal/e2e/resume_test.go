package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// expectUnloadGuard tries to leave the page and checks whether the browser
// asks first (a beforeunload dialog). When it asks, the test stays on the
// page. The page needs a user gesture first for browsers to ask at all.
func expectUnloadGuard(t testing.TB, b context.Context, want bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b, 20*time.Second)
	defer cancel()
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	loads := chromedp.Events(ctx, page.LoadEventFired)
	if err := chromedp.Do(b, chromedp.Evaluate[chromedp.Void](`setTimeout(() => { location.href = "/?left=1"; }, 0)`)); err != nil {
		t.Fatal(err)
	}
	if want {
		for d, err := range dialogs {
			if err != nil {
				t.Fatalf("no beforeunload dialog while a transfer runs: %v", err)
			}
			if d.Type != page.DialogTypeBeforeunload {
				t.Fatalf("unexpected %s dialog", d.Type)
			}
			break
		}
		if _, err := chromedp.Call(b, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false}); err != nil {
			t.Fatalf("stay on the page: %v", err)
		}
		t.Log("leaving asks for confirmation; stayed")
		return
	}
	for _, err := range loads {
		if err != nil {
			t.Fatalf("the page did not navigate away: %v", err)
		}
		break
	}
}

// A zip download cannot rewind. Here the receiver holds back its request
// for a damaged chunk (a test hook), so verified chunks pile up behind the
// gap, waiting for their turn in the archive; then the connection is cut.
// On the new connection the receiver must let those chunks go and ask for
// everything from the gap on: the finished archive has every file intact,
// nothing twice. Leaving the page meanwhile asks for confirmation.
func TestZipResumeAfterGap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	dir := t.TempDir()
	want := map[string]string{}
	var paths []string
	for i, size := range []int64{3 << 20, 20<<20 + 5, 1<<20 + 7} {
		name := fmt.Sprintf("part-%d.bin", i)
		p, sum := writeRandom(t, filepath.Join(dir, name), size)
		paths = append(paths, p)
		want[name] = sum
	}
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	// Chunk 3 of every file arrives damaged once; the receiver sits on the
	// first NACK (the others are asked for again as usual).
	onNewDocument(t, sb, `window.ferryTest = { corrupt: [{file:0,index:3},{file:1,index:3},{file:2,index:3}] };`)
	onNewDocument(t, rb, noFSAccess+`window.ferryTest = { holdNack: true };`)
	dl := t.TempDir()
	setDownloads(t, rb, dl)
	link := sendFiles(t, sb, base+"/", paths...)
	downloads := chromedp.BrowserEvents(rb, browser.DownloadProgress)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	// Wait until verified chunks wait behind the gap.
	if _, err := chromedp.Run(rb, chromedp.Poll[bool](`(() => { const r = ferryDebug.flow.receiver; return r && r.held === 1 && r.stats.atWorker >= 64; })()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout))); err != nil {
		t.Fatalf("no chunks held behind the gap: %v\nreceiver: %s\nsender: %s", err, diag(rb), diag(sb))
	}
	if st := text(rb, "status"); st == "" {
		t.Error("no status while receiving")
	}
	expectUnloadGuard(t, rb, true)
	if st, err := waitState(rb, "transferring"); err != nil || st != "transferring" {
		t.Fatalf("receiver state after staying: %q (%v)", st, err)
	}
	if err := chromedp.Do(rb, chromedp.Evaluate[chromedp.Void](`ferryDebug.flow.current.fail("test: connection cut behind a gap")`)); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(rb), diag(sb))
	}
	if st, err := waitState(sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v): %s", st, err, text(sb, "error"))
	}
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
	compareTrees(t, zipSHA256(t, filepath.Join(dl, "ferry-files.zip")), want)
	s, err := chromedp.Run(rb, chromedp.Evaluate[map[string]int](`({gen: ferryDebug.flow.generation, dropped: ferryDebug.flow.receiver.dropped, refetched: ferryDebug.flow.refetched})`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generation %d, %d verified chunks let go at the reconnection, %d re-fetched after a bad copy", s["gen"], s["dropped"], s["refetched"])
	if s["gen"] < 2 || s["dropped"] == 0 {
		t.Errorf("want a second generation and chunks let go, got %v", s)
	}
	// Done: leaving no longer asks.
	expectUnloadGuard(t, rb, false)
}
