package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/browsertest"
	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/oidcstub"
)

// focused names the element that has the keyboard focus (its id, else
// its class), and whether it shows a visible focus indicator.
func focused(t testing.TB, b context.Context) (string, bool) {
	t.Helper()
	m, err := chromedp.Run(b, chromedp.Evaluate[map[string]any](`(() => {
  const e = document.activeElement;
  if (!e || e === document.body) return { name: "", ring: false };
  const s = getComputedStyle(e);
  return { name: e.id || e.className, ring: e.matches(":focus-visible") && s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2 };
})()`))
	if err != nil {
		t.Fatal(err)
	}
	name, _ := m["name"].(string)
	ring, _ := m["ring"].(bool)
	return name, ring
}

// tabOrder presses Tab n times from the top of the page and returns what
// gets the focus each time; every stop must show a focus ring.
func tabOrder(t testing.TB, b context.Context, n int) []string {
	t.Helper()
	if err := chromedp.Do(b, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range n {
		if err := chromedp.Do(b, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		name, ring := focused(t, b)
		if !ring {
			t.Errorf("%q has the focus but no visible focus ring", name)
		}
		got = append(got, name)
	}
	return got
}

func press(t testing.TB, b context.Context, keys string, opts ...chromedp.KeyOption) {
	t.Helper()
	if err := chromedp.Do(b, chromedp.KeyEvent(keys, opts...)); err != nil {
		t.Fatal(err)
	}
}

// Everything can be done with the keyboard alone: choosing the files,
// reaching the link, accepting on the other side; the focus is always
// visible and the order follows the page. Leaving the send page while its
// link waits for the receiver asks first; leaving after the transfer does
// not.
func TestKeyboardOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, want := randomFile(t, t.TempDir(), "by keyboard.bin", 3<<20+11)
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	onNewDocument(t, rb, stubSavePickerOPFS)
	if err := chromedp.Do(sb, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(sb, "idle"); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tabOrder(t, sb, 4), ","), "brand,choose-files,choose-folder,relay-only"; got != want {
		t.Fatalf("send page tab order %s, want %s", got, want)
	}
	// Back to "Choose files" and open the chooser with Enter.
	press(t, sb, kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
	press(t, sb, kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
	if name, _ := focused(t, sb); name != "choose-files" {
		t.Fatalf("focus on %q, want choose-files", name)
	}
	if _, err := chromedp.Call(sb, page.SetInterceptFileChooserDialog, page.SetInterceptFileChooserDialogParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	choosers := chromedp.Events(sb, page.FileChooserOpened)
	press(t, sb, kb.Enter)
	for ev, err := range choosers {
		if err != nil {
			t.Fatalf("Enter on “Choose files” opened no file chooser: %v", err)
		}
		if _, err := chromedp.Call(sb, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: []string{src}, BackendNodeID: ev.BackendNodeID}); err != nil {
			t.Fatal(err)
		}
		break
	}
	link := waitLink(t, sb)
	// The button that had the focus is gone: the focus moves on to
	// “Copy link”; before it come the link itself and Cancel.
	if name, ring := focused(t, sb); name != "copy" || !ring {
		t.Errorf("with the link shown the focus is on %q (ring %v), want copy", name, ring)
	}
	var back []string
	for range 2 {
		press(t, sb, kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
		name, ring := focused(t, sb)
		if !ring {
			t.Errorf("%q has the focus but no visible ring", name)
		}
		back = append(back, name)
	}
	if got, want := strings.Join(back, ","), "link,cancel-share"; got != want {
		t.Errorf("before Copy link come %s, want %s", got, want)
	}
	expectUnloadGuard(t, sb, true)
	if st, err := waitState(sb, "waiting"); err != nil || st != "waiting" || link != waitLink(t, sb) {
		t.Fatalf("after staying, the send page is %q (%v)", st, err)
	}

	// The receive page asks before it uses the link up; Enter on its
	// button (which has the focus) is a person's doing, like a click.
	if err := chromedp.Do(rb, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(rb, "ready", "error"); err != nil || st != "ready" {
		t.Fatalf("receiver state %q (%v)", st, err)
	}
	if name, _ := focused(t, rb); name != "receive" {
		t.Fatalf("the receive page puts the focus on %q, want receive", name)
	}
	press(t, rb, kb.Enter)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)", st, err)
	}
	if name, _ := focused(t, rb); name != "accept" {
		t.Errorf("the offer puts the focus on %q, want accept", name)
	}
	press(t, rb, kb.Tab)
	if name, ring := focused(t, rb); name != "decline" || !ring {
		t.Errorf("after Accept the focus goes to %q (ring %v), want decline", name, ring)
	}
	press(t, rb, kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
	if name, ring := focused(t, rb); name != "accept" || !ring {
		t.Errorf("back to %q (ring %v), want accept", name, ring)
	}
	press(t, rb, kb.Enter)
	if st, err := waitState(rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	if st, err := waitState(sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v)", st, err)
	}
	if got := opfsSHA256(t, rb, "by keyboard.bin"); got != want {
		t.Fatalf("received sha256 %s, sent %s", got, want)
	}
	expectUnloadGuard(t, sb, false)
}

// Files and a whole folder dropped on the send page keep their relative
// paths.
func TestDropFilesAndFolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	dir := t.TempDir()
	loose, _ := writeRandom(t, filepath.Join(dir, "loose.txt"), 100)
	writeRandom(t, filepath.Join(dir, "album", "a.jpg"), 2000)
	writeRandom(t, filepath.Join(dir, "album", "sub", "b.jpg"), 3000)
	sb := newBrowser(t, ctx, "sender")
	if err := chromedp.Do(sb, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(sb, "idle"); err != nil {
		t.Fatal(err)
	}
	box, err := chromedp.Run(sb, chromedp.Evaluate[map[string]float64](`(() => { const r = document.getElementById("pick").getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()`))
	if err != nil {
		t.Fatal(err)
	}
	data := &input.DragData{Items: []*input.DragDataItem{}, Files: []string{loose, filepath.Join(dir, "album")}, DragOperationsMask: 1}
	for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
		if _, err := chromedp.Call(sb, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: box["x"], Y: box["y"], Data: data}); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	waitLink(t, sb)
	got, err := chromedp.Run(sb, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#file-list .file-name"), (e) => e.title).sort().join(",")`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "album/a.jpg,album/sub/b.jpg,loose.txt"; got != want {
		t.Fatalf("dropped files listed as %s, want %s", got, want)
	}
}

// signInServer starts a server whose senders sign in with an OIDC
// provider (a stub that signs in alice@example.org); change adjusts the
// rest of its configuration.
func signInServer(t *testing.T, change func(*config.Serve)) string {
	t.Helper()
	stub, err := oidcstub.Start("ferry-e2e", "client-secret", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stub.Close)
	_, base, _ := startServerWith(t, nil, func(c *config.Serve) {
		c.OIDCIssuer, c.OIDCClientID, c.OIDCClientSecret = stub.URL, "ferry-e2e", "client-secret"
		if change != nil {
			change(c)
		}
	})
	return base
}

// signIn opens the send page, which asks to sign in, follows its sign-in
// link through the provider and back, and checks the page then says who
// is signed in, with a sign-out link.
func signIn(t *testing.T, sb context.Context, base string) {
	t.Helper()
	if err := chromedp.Do(sb, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(sb, "signin"); err != nil || st != "signin" {
		t.Fatalf("send page state %q (%v), want signin", st, err)
	}
	href, err := chromedp.Run(sb, chromedp.Evaluate[string](`document.getElementById("signin-link").getAttribute("href")`))
	if err != nil || href != "/auth/login?next=/" {
		t.Fatalf("sign-in link %q (%v)", href, err)
	}
	// Through the provider and back to the send page.
	loaded := chromedp.Events(sb, page.LoadEventFired)
	if err := chromedp.Do(sb, chromedp.Click(chromedp.ID("signin-link"))); err != nil {
		t.Fatal(err)
	}
	for _, err := range loaded {
		if err != nil {
			t.Fatalf("no page after signing in: %v", err)
		}
		break
	}
	if st, err := waitState(sb, "idle", "signin"); err != nil || st != "idle" {
		t.Fatalf("after signing in the send page is %q (%v)", st, err)
	}
	// The page is idle at once; the account area is filled when the
	// server has answered who is signed in.
	if who := waitAccount(t, sb); !strings.Contains(who, "alice@example.org") || !strings.Contains(who, "Sign out") {
		t.Errorf("account area says %q", who)
	}
	out, _ := chromedp.Run(sb, chromedp.Evaluate[string](`document.querySelector('#account a').getAttribute("href")`))
	if out != "/auth/logout" {
		t.Errorf("sign-out link %q", out)
	}
}

// waitAccount waits until the send page has filled its account area (it
// asks the server who is signed in after the page is up) and returns what
// it says.
func waitAccount(t testing.TB, b context.Context) string {
	t.Helper()
	who, err := chromedp.Run(b, chromedp.Poll[string](`(() => { const a = document.getElementById("account"); return !a.hidden && a.textContent ? a.textContent : null; })()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatalf("the account area stays empty: %v", err)
	}
	return who
}

// When the server asks senders to sign in, the send page says so and
// links to the sign-in; after signing in it shows who is signed in, with
// a sign-out link, and sending works. If the sign-in is gone by the time a
// link is created (the server closes with 4009, reason "sign-in
// required"), the page says so and links to the sign-in again.
func TestSignInToSend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := signInServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "signed.bin", 1000)
	sb := newBrowser(t, ctx, "sender")
	// The server answers "who is signed in" late, as on a loaded machine:
	// the page is idle before it knows, and the test must wait for what it
	// asserts, not for the page's state.
	if _, err := chromedp.Call(sb, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{URLPattern: base + "/api/v1/me", Latency: 700, DownloadThroughput: -1, UploadThroughput: -1}},
	}); err != nil {
		t.Fatal(err)
	}
	signIn(t, sb, base)
	if err := chromedp.Do(sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src})); err != nil {
		t.Fatal(err)
	}
	link := waitLink(t, sb)
	t.Logf("signed in, link %s…", link[:strings.IndexByte(link, '#')+4])

	// The sign-in is gone (cookies cleared) while the page still thinks it
	// may send: creating is refused with 4009.
	if err := chromedp.Do(sb, chromedp.Click(chromedp.ID("cancel-share"))); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(sb, "canceled"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(sb, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(sb, "idle"); err != nil {
		t.Fatal(err)
	}
	// The page has heard that alice may send before the cookies go.
	if who := waitAccount(t, sb); !strings.Contains(who, "alice@example.org") {
		t.Fatalf("account area says %q", who)
	}
	if _, err := chromedp.Call(sb, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src})); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(sb, "error"); err != nil || st != "error" {
		t.Fatalf("state %q (%v)", st, err)
	}
	if msg := text(sb, "error-text"); !strings.Contains(msg, "signed-in") || strings.Contains(msg, "network") {
		t.Errorf("4009 message %q does not explain the sign-in", msg)
	}
	again, _ := chromedp.Run(sb, chromedp.Evaluate[string](`(document.querySelector('#error-actions a') || {getAttribute: () => ""}).getAttribute("href")`))
	if again != "/auth/login?next=/" {
		t.Errorf("the error offers %q, want the sign-in link", again)
	}
}

// Creating links only from some networks: the page explains the refusal
// (4009, reason "not allowed from this network"). On a server that also
// has sign-in, a signed-in sender from another network is told about the
// network, not sent to sign in again: the page goes by the close reason,
// not by whether the server offers a sign-in.
func TestCreateForbiddenNetwork(t *testing.T) {
	for _, withSignIn := range []bool{false, true} {
		t.Run(map[bool]string{false: "anyone", true: "signed in"}[withSignIn], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			elsewhere := func(c *config.Serve) { c.AllowCreateFrom = config.List{"192.0.2.0/24"} }
			src, _ := randomFile(t, t.TempDir(), "x.bin", 10)
			sb := newBrowser(t, ctx, "sender")
			if withSignIn {
				signIn(t, sb, signInServer(t, elsewhere))
			} else {
				_, base, _ := startServerWith(t, nil, elsewhere)
				if err := chromedp.Do(sb, chromedp.Navigate(base+"/")); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{src})); err != nil {
				t.Fatal(err)
			}
			if st, err := waitState(sb, "error"); err != nil || st != "error" {
				t.Fatalf("state %q (%v)", st, err)
			}
			if msg := text(sb, "error-text"); !strings.Contains(msg, "from your network") || strings.Contains(msg, "sign") {
				t.Errorf("message %q", msg)
			}
			if links, _ := chromedp.Run(sb, chromedp.Evaluate[int](`document.querySelectorAll('#error-actions a[href^="/auth/login"]').length`)); links != 0 {
				t.Errorf("the refusal offers to sign in")
			}
		})
	}
}

// The server's size limit (GET /api/v1/me maxBytes): the send page says
// how much one transfer may carry, refuses more before creating a link
// and lets the person choose again; a receiver refuses a sender that
// offers more anyway.
func TestMaxTransferSize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base, alog := startServerWith(t, nil, func(c *config.Serve) { c.MaxTransfer = 1_000_000 })
	dir := t.TempDir()
	big, _ := randomFile(t, dir, "big.bin", 2_000_000)
	small, _ := randomFile(t, dir, "small.bin", 1000)
	sb := newBrowser(t, ctx, "sender")
	if err := chromedp.Do(sb, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	note, err := chromedp.Run(sb, chromedp.Poll[string](`(() => { const t = document.getElementById("pick-note").textContent; return t.includes("up to") ? t : null; })()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatalf("the pick card does not tell the limit: %v (%q)", err, text(sb, "pick-note"))
	}
	if note = strings.ReplaceAll(note, "\u00a0", " "); !strings.Contains(note, "up to 1.0 MB in one transfer") {
		t.Errorf("the pick card says %q", note)
	}
	if err := chromedp.Do(sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{big})); err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(sb, chromedp.Poll[string](`(() => { const e = document.getElementById("error"); return !e.hidden && document.body.dataset.state === "idle" ? document.getElementById("error-text").textContent : null; })()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatalf("no refusal: %v (%s)", err, diag(sb))
	}
	msg = strings.ReplaceAll(msg, "\u00a0", " ")
	if !strings.Contains(msg, "2.0 MB") || !strings.Contains(msg, "at most 1.0 MB") {
		t.Errorf("refusal %q does not give the sizes", msg)
	}
	if v, _ := chromedp.Run(sb, chromedp.Evaluate[string](`document.getElementById("link").value`)); v != "" {
		t.Errorf("a link was shown for files over the limit: %s", v)
	}
	for _, e := range alog.Recent(200) {
		if e.Event == audit.TicketCreated {
			t.Errorf("a ticket was created for files over the limit: %+v", e)
		}
	}
	// Choosing again works.
	if err := chromedp.Do(sb, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{small})); err != nil {
		t.Fatal(err)
	}
	waitLink(t, sb)

	// A sender that ignores the limit (test hook) is declined by the
	// receiver's page.
	rogue := newBrowser(t, ctx, "rogue sender")
	onNewDocument(t, rogue, `window.ferryTest = { ignoreMaxBytes: true };`)
	link := sendFiles(t, rogue, base+"/", big)
	rb := newBrowser(t, ctx, "receiver")
	openLink(t, rb, link)
	if st, err := waitState(rb, "error", "review"); err != nil || st != "error" {
		t.Fatalf("receiver state %q (%v), want error", st, err)
	}
	if msg := text(rb, "error-text"); !strings.Contains(msg, "more than this server allows") {
		t.Errorf("receiver says %q", msg)
	}
	if st, err := waitState(rogue, "canceled", "error"); err != nil || !strings.Contains(text(rogue, "error-text"), "larger than the server allows") {
		t.Errorf("sender state %q (%v): %q", st, err, text(rogue, "error-text"))
	}
}

// Reports name the files only when the operator records names.
func TestAuditNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, base, alog := startServerWith(t, nil, func(c *config.Serve) { c.AuditNames = true })
	dir := t.TempDir()
	a, _ := randomFile(t, dir, "alpha.txt", 1000)
	b, _ := randomFile(t, dir, "beta.txt", 2000)
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	onNewDocument(t, rb, `window.showDirectoryPicker = async () => navigator.storage.getDirectory();`)
	link := sendFiles(t, sb, base+"/", a, b)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)", st, err)
	}
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(rb, "done", "error"); err != nil || st != "done" {
		t.Fatalf("receiver state %q (%v)", st, err)
	}
	for role, e := range waitReports(t, alog) {
		if got := strings.Join(e.Names, ","); got != "alpha.txt,beta.txt" {
			t.Errorf("%s reported names %q, want alpha.txt,beta.txt", role, got)
		}
	}
}

// Opened over plain http from another host name, the page is not a secure
// context (no Web Crypto): it says so instead of failing obscurely.
func TestInsecureContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(u.Host)
	b := browsertest.New(t, ctx, browsertest.Options{ExtraFlags: map[string]any{"host-resolver-rules": "MAP ferry.test 127.0.0.1"}})
	for _, p := range []string{"/", "/r#AAECAwQFBgcI.AAECAwQFBgcICQoLDA0ODw"} {
		if err := chromedp.Do(b, chromedp.Navigate(fmt.Sprintf("http://ferry.test:%s%s", port, p))); err != nil {
			t.Fatal(err)
		}
		if st, err := waitState(b, "error"); err != nil || st != "error" {
			t.Fatalf("%s: state %q (%v)", p, st, err)
		}
		if msg := text(b, "error-text"); !strings.Contains(msg, "https://") {
			t.Errorf("%s: message %q", p, msg)
		}
		if !strings.Contains(text(b, "title"), "went wrong") {
			t.Errorf("%s: headline %q", p, text(b, "title"))
		}
	}
}
