package e2e_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/ticket"
)

// The Go command-line peer and the browser understand each other both
// ways through the same server.
func TestGoPeerToBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, want := randomFile(t, t.TempDir(), "from-go.bin", 20<<20+3)
	link, sent := goSend(t, ctx, base, src, "from-go.bin", peer.SendOptions{})
	rb := newBrowser(t, ctx, "receiver")
	onNewDocument(t, rb, stubSavePickerOPFS)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	if r := <-sent; r.err != nil {
		t.Fatalf("go sender: %v", r.err)
	} else if r.res.PacketSize != 1191 {
		t.Fatalf("sent %d-byte SCTP packets to Chromium, want 1191", r.res.PacketSize)
	}
	if got := opfsSHA256(t, rb, "from-go.bin"); got != want {
		t.Fatalf("received sha256 %s, sent %s", got, want)
	}
}

func TestBrowserToGoPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, want := randomFile(t, t.TempDir(), "from-browser.bin", 20<<20+3)
	sb := newBrowser(t, ctx, "sender")
	link := sendFiles(t, sb, base+"/", src)
	server, tk, err := ticket.ParseLink(link)
	if err != nil {
		t.Fatalf("the browser's link does not parse in Go: %v", err)
	}
	dir := t.TempDir()
	res, err := peer.Receive(ctx, &peer.Config{Server: server}, server, tk, peer.ReceiveOptions{Dir: dir})
	if err != nil {
		t.Fatalf("go receiver: %v\nsender: %s", err, diag(sb))
	}
	// Chromium does not announce large packets: the Go peer keeps pion's
	// default size even on one machine.
	if res.PacketSize != 1191 {
		t.Errorf("the Go receiver sent %d-byte SCTP packets to Chromium, want 1191", res.PacketSize)
	}
	if got := fileSHA256(t, filepath.Join(dir, "from-browser.bin")); got != want {
		t.Fatalf("received sha256 %s, sent %s", got, want)
	}
	if st, err := waitState(sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v)\nsender: %s", st, err, diag(sb))
	}
}
