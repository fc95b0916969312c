package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/browsertest"
)

// On a 375 px wide phone screen both pages fit without sideways scrolling,
// and the QR code on the send page decodes to the link.
func TestPhoneLayoutAndQRCode(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatal("zbarimg not found: run `make deps` (it installs zbar-tools)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "a file with a rather long name to wrap.bin", 1000)
	sb := browsertest.New(t, ctx, browsertest.Options{})
	rb := browsertest.New(t, ctx, browsertest.Options{})
	for _, b := range []context.Context{sb, rb} {
		// Headless windows are at least 500 px wide; emulate the phone.
		if err := chromedp.Do(b, chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile)); err != nil {
			t.Fatal(err)
		}
	}
	// A phone offers the Web Share API: the page shows "Share…", which
	// hands over the link (stubbed here: headless Linux has no share sheet).
	onNewDocument(t, sb, `navigator.share = async (d) => { window.__shared = d; }; navigator.canShare = () => true;`)
	link := sendFiles(t, sb, base+"/", src)
	if err := chromedp.Do(sb, chromedp.Click(chromedp.ID("share-button"))); err != nil {
		t.Fatalf("no Share button: %v", err)
	}
	if shared, err := chromedp.Run(sb, chromedp.Poll[string](`window.__shared ? window.__shared.url : null`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))); err != nil || shared != link {
		t.Errorf("shared %q (%v), want the link", shared, err)
	}
	// "Copy link" puts the link on the clipboard.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(sb, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(sb, chromedp.Click(chromedp.ID("copy"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(sb, chromedp.Poll[bool](`document.getElementById("copy").textContent === "Copied"`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the Copy button never said Copied: %v", err)
	}
	if copied, err := chromedp.Run(sb, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); err != nil || copied != link {
		t.Errorf("clipboard holds %q (%v), want the link", copied, err)
	}

	png, err := chromedp.Run(sb, chromedp.Screenshot(chromedp.ID("qr")))
	if err != nil {
		t.Fatalf("screenshot of the QR code: %v", err)
	}
	p := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, zbar, "-q", "--raw", p).Output()
	if err != nil {
		t.Fatalf("zbarimg could not decode the QR code: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != link {
		t.Fatalf("QR code says %q, the link is %q", got, link)
	}

	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)", st, err)
	}
	for name, b := range map[string]context.Context{"send page": sb, "receive page": rb} {
		w, err := chromedp.Run(b, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil || w > 375 {
			t.Errorf("%s is %d px wide at 375 px (%v)", name, w, err)
		}
	}
	// The primary action is reachable by keyboard: it has the focus.
	focused, err := chromedp.Run(rb, chromedp.Evaluate[string](`document.activeElement && document.activeElement.id`))
	if err != nil || focused != "accept" {
		t.Errorf("focus is on %q (%v), want the Accept button", focused, err)
	}
}

// Either side can cancel; the other side is told who canceled, and a
// partly received file is not kept.
func TestCancel(t *testing.T) {
	for _, who := range []string{"receiver", "sender"} {
		t.Run(who, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_, base, alog := startServerAudited(t, nil)
			src, _ := randomFile(t, t.TempDir(), "big.bin", 200<<20)
			sb := newBrowser(t, ctx, "sender")
			rb := newBrowser(t, ctx, "receiver")
			onNewDocument(t, rb, stubSavePickerOPFS)
			link := sendFiles(t, sb, base+"/", src)
			openLink(t, rb, link)
			if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
				t.Fatalf("receiver state %q (%v)", st, err)
			}
			if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
				t.Fatal(err)
			}
			waitProgress(t, sb, rb, 5<<20)
			canceler, other := rb, sb
			if who == "sender" {
				canceler, other = sb, rb
			}
			if err := chromedp.Do(canceler, chromedp.Click(chromedp.ID("cancel"))); err != nil {
				t.Fatal(err)
			}
			for b, want := range map[context.Context]string{canceler: "You canceled", other: "other side canceled"} {
				st, err := waitState(b, "canceled", "error", "done")
				if err != nil || st != "canceled" || !strings.Contains(text(b, "error"), want) {
					t.Fatalf("state %q (%v), message %q; want %q", st, err, text(b, "error"), want)
				}
			}
			// The page's worker discards the partial file after the page
			// says canceled: wait for it (bounded).
			if _, err := chromedp.Run(rb, chromedp.Poll[bool](`(async () => {
  const root = await navigator.storage.getDirectory();
  return (await (await root.getFileHandle("big.bin")).getFile()).size === 0;
})()`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
				t.Errorf("the canceled file keeps its bytes (%v); nothing unverified may be kept", err)
			}
			for role, e := range waitReports(t, alog) {
				if e.Event != "transfer_canceled" {
					t.Errorf("%s reported %q, want transfer_canceled", role, e.Event)
				}
			}
		})
	}
}
