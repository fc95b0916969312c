package e2e_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/storedpeer"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// A stored link opened in a browser says what it is (the page cannot
// download stored files yet), and a used-up one says why it does not work.
func TestStoredLinkInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "kept.bin", 100<<10)
	files, _, err := transfer.Collect([]string{src})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(base)
	c := &storedpeer.Client{Base: u}
	one := 1
	up, err := c.Upload(ctx, storedpeer.UploadOptions{Files: files, Downloads: &one})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ctx, "receiver")
	expectError(t, b, up.Link, "stored these files on the server")
	if _, err := (&storedpeer.Client{Base: u}).Receive(ctx, ticketOf(t, up.Link), storedpeer.ReceiveOptions{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	expectError(t, b, up.Link, "already downloaded as many times as the sender allowed")
}

func ticketOf(t *testing.T, link string) ticket.Ticket {
	t.Helper()
	_, tk, err := ticket.ParseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}
