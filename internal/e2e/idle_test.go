package e2e_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/transfer"
)

// A sender that keeps the connection but stops sending makes the receive
// page stop with a clear message instead of waiting for ever.
func TestBrowserReceiverGivesUpOnSilentSender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "stall.bin", 4<<20)
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	server, _ := url.Parse(base)
	links := make(chan string, 1)
	cfg := &peer.Config{Server: server, Events: peer.Events{Link: func(l string, _ time.Time) { links <- l }}}
	release := make(chan struct{})
	var once sync.Once
	stall := func(file int, index uint32, data []byte) {
		if index == 2 {
			once.Do(func() {
				select { // the sender hangs with its connection open
				case <-release:
				case <-ctx.Done():
				}
			})
		}
	}
	sent := make(chan error, 1)
	go func() {
		_, err := peer.Send(ctx, cfg, []transfer.SourceFile{{Path: "stall.bin", Local: src, Size: fi.Size(), Mtime: fi.ModTime()}}, peer.SendOptions{Mangle: stall})
		sent <- err
	}()
	defer func() {
		close(release)
		cancel()
		<-sent
	}()
	var link string
	select {
	case link = <-links:
	case err := <-sent:
		t.Fatalf("go sender: %v", err)
	case <-ctx.Done():
		t.Fatal("no link from the go sender")
	}
	rb := newBrowser(t, ctx, "receiver")
	onNewDocument(t, rb, stubSavePickerOPFS)
	onNewDocument(t, rb, `window.ferryTest = Object.assign(window.ferryTest || {}, { idleMs: 1500 });`)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	st, err := waitState(rb, "done", "error", "canceled")
	if err != nil || st != "error" {
		t.Fatalf("receiver ended in %q (%v), want error\nreceiver: %s", st, err, diag(rb))
	}
	if msg := text(rb, "error"); !strings.Contains(msg, "stopped sending") {
		t.Fatalf("error %q does not say the sender stopped sending", msg)
	}
}
