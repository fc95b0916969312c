package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// expectError opens url in a new tab of browser b and waits for the page's
// error, which must contain want.
func expectError(t *testing.T, b context.Context, url, want string) {
	t.Helper()
	tab, cancel := chromedp.NewContext(b)
	defer cancel()
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	// A well-formed link waits for a person's click before the server is
	// asked about it.
	st, err := waitState(tab, "error", "ready")
	if err == nil && st == "ready" {
		if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("receive"))); err != nil {
			t.Fatalf("click Receive files on %s: %v", url, err)
		}
		st, err = waitState(tab, "error", "review", "done")
	}
	if err != nil {
		t.Fatalf("waiting for an error on %s: %v", url, err)
	}
	msg := text(tab, "error")
	if st != "error" || !strings.Contains(msg, want) {
		t.Fatalf("page state %q, error %q; want an error containing %q", st, msg, want)
	}
	t.Logf("%s: %s", url, msg)
}

func TestWrongSecretClosesTheLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "secret.bin", 1000)
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	link := sendFiles(t, sb, base+"/", src)

	// Same id, a different (well-formed) secret.
	i := strings.LastIndexByte(link, '.')
	secret := []byte(link[i+1:])
	if secret[0] == 'A' {
		secret[0] = 'B'
	} else {
		secret[0] = 'A'
	}
	expectError(t, rb, link[:i+1]+string(secret), "secret is wrong")
	st, err := waitState(sb, "error", "done")
	if err != nil || st != "error" {
		t.Fatalf("sender state %q (%v)", st, err)
	}
	if msg := text(sb, "error"); !strings.Contains(msg, "wrong secret") {
		t.Fatalf("sender error %q does not explain the wrong secret", msg)
	}
	// The link is burned: even the right secret is refused now.
	expectError(t, rb, link, "already opened")
	waitNoConns(t, srv)
}

func TestUsedLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "used.bin", 1000)
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	link := sendFiles(t, sb, base+"/", src)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("first receiver: state %q (%v): %s", st, err, text(rb, "error"))
	}
	expectError(t, rb, link, "already opened by someone")
}

func TestExpiredLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clk := newClock()
	_, base := startServer(t, clk.Now)
	src, _ := randomFile(t, t.TempDir(), "late.bin", 1000)
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	link := sendFiles(t, sb, base+"/", src)
	clk.Advance(2 * time.Hour) // past the default one-hour ticket lifetime
	expectError(t, rb, link, "expired")
}

func TestMalformedLinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	rb := newBrowser(t, ctx, "receiver")
	for _, c := range []struct{ frag, want string }{
		{"AAECAwQFBgcI.AAECAwQFBgcICQoLDA0OD", "not copied completely"},
		{"AAECAwQFBgcI", "incomplete"},
		{"", "incomplete"},
		{"AAECAwQF*gcI.AAECAwQFBgcICQoLDA0ODw", "not a valid ferry link"},
	} {
		expectError(t, rb, base+"/r#"+c.frag, c.want)
	}
	// A well-formed link the server never issued.
	expectError(t, rb, base+"/r#AAECAwQFBgcI.AAECAwQFBgcICQoLDA0ODw", "wrong or was never valid")
}

func TestDecline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "unwanted.bin", 1000)
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	link := sendFiles(t, sb, base+"/", src)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)", st, err)
	}
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("decline"))); err != nil {
		t.Fatal(err)
	}
	for b, want := range map[context.Context]string{rb: "You declined", sb: "receiver declined"} {
		st, err := waitState(b, "canceled", "error", "done")
		if err != nil || st != "canceled" || !strings.Contains(text(b, "error"), want) {
			t.Fatalf("state %q (%v), message %q; want %q", st, err, text(b, "error"), want)
		}
	}
}
