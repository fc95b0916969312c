package e2e_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/browsertest"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/ticket"
)

// Mail and chat "safe link" scanners open links in headless browsers that
// run the page's JavaScript, before the person they were sent to does. A
// live link works once, so the receive page must not use it up on load:
// here Chromium's --dump-dom (what a simple scanner runs) and a browser
// tab that loads the link, waits for the page to settle and then tries a
// scripted click on every button of the page go first; the real receiver
// must still get the files.
func TestLinkScannersDoNotUseLinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, base := startServer(t, nil)
	src, want := randomFile(t, t.TempDir(), "for-the-person.bin", 1<<20+5)
	link, sent := goSend(t, ctx, base, src, "for-the-person.bin", peer.SendOptions{})

	// A scanner that renders the page and keeps its DOM: Chromium's own
	// --dump-dom, in a separate process, run to its end.
	dump := exec.CommandContext(ctx, browsertest.Path(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--dump-dom", link)
	dom, err := dump.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}

	// A scanner that waits for the page to settle and then clicks whatever
	// it finds, by script. The page has settled when it shows a state it
	// holds by itself: the offer to receive (or, had it joined on load,
	// the pairing, the offered files or an error).
	sc := newBrowser(t, ctx, "scanner")
	if err := chromedp.Do(sc, chromedp.Navigate(link)); err != nil {
		t.Fatalf("scanner: open link: %v", err)
	}
	settled, err := waitState(sc, "ready", "paired", "connecting", "review", "error")
	if err != nil {
		t.Fatalf("scanner: the page did not settle: %v", err)
	}
	// The state right after the clicks, in the same task: a click the page
	// took would have moved it on to "waiting" at once.
	afterClicks, err := chromedp.Run(sc, chromedp.Evaluate[string](`(() => {
  for (const b of document.querySelectorAll("button")) {
    b.click();
    b.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
    b.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  }
  return document.body.dataset.state;
})()`))
	if err != nil {
		t.Fatalf("scanner: scripted clicks: %v", err)
	}

	// The person the link was for receives the files.
	server, tk, err := ticket.ParseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := peer.Receive(ctx, &peer.Config{Server: server}, server, tk, peer.ReceiveOptions{Dir: dir}); err != nil {
		t.Fatalf("the receiver could not use the link after the scanners (page settled as %q, %q after scripted clicks): %v", settled, afterClicks, err)
	}
	if got := fileSHA256(t, filepath.Join(dir, "for-the-person.bin")); got != want {
		t.Fatalf("received sha256 %s, sent %s", got, want)
	}
	if r := <-sent; r.err != nil {
		t.Fatalf("go sender: %v", r.err)
	}

	// What the scanners saw: an invitation to receive, no connection.
	if settled != "ready" || afterClicks != "ready" {
		t.Errorf("scanner tab: page settled as %q, %q after scripted clicks; want ready", settled, afterClicks)
	}
	if d := string(dom); !strings.Contains(d, `data-state="ready"`) || !strings.Contains(d, "Someone wants to send you files") {
		t.Errorf("--dump-dom shows no invitation to receive:\n%s", d)
	}
	waitNoConns(t, srv)
}
