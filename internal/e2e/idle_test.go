package e2e_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/peer"
)

// A sender that keeps the connection but stops sending makes the receive
// page stop with a clear message instead of waiting for ever.
func TestBrowserReceiverGivesUpOnSilentSender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "stall.bin", 4<<20)
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
	link, sent := goSend(t, ctx, base, src, "stall.bin", peer.SendOptions{Mangle: stall})
	defer func() {
		close(release)
		cancel()
		<-sent
	}()
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
