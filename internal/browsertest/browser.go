// Package browsertest starts headless Debian Chromium for end-to-end tests,
// each instance with a fresh profile, and tears it down with the test.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/testenv"
)

// Path returns the Chromium binary: $FERRY_CHROMIUM, else /usr/bin/chromium.
func Path() string {
	if p := os.Getenv("FERRY_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// Require skips the test outside the heavy tier (testenv), and in it fails
// the test (never skips it) when Chromium is missing, with the command that
// installs it.
func Require(t testing.TB) {
	t.Helper()
	testenv.Heavy(t, "Chromium")
	if _, err := exec.LookPath(Path()); err != nil {
		t.Fatalf("chromium not found at %s: run `make test` as root (it installs it) or `apt-get install chromium`", Path())
	}
}

// Options adjust one browser instance.
type Options struct {
	// ExtraFlags are added to the default headless flags.
	ExtraFlags map[string]any
	// WindowWidth and WindowHeight set the window size (default 1280x900).
	WindowWidth, WindowHeight int
	// ExecPath replaces the Chromium binary, e.g. with a script that execs
	// it inside a network namespace (`ip netns exec NS chromium "$@"`); it
	// must exec, so that the pid chromedp kills is the browser's.
	ExecPath string
}

// New starts a headless Chromium with a fresh user-data-dir and returns a
// browser context; it is closed and the process killed when the test ends.
func New(t testing.TB, parent context.Context, o Options) context.Context {
	t.Helper()
	Require(t)
	w, h := o.WindowWidth, o.WindowHeight
	if w == 0 {
		w, h = 1280, 900
	}
	exe := o.ExecPath
	if exe == "" {
		exe = Path()
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Two local browsers must see each other's host candidates as IPs:
		// mDNS .local names do not resolve between sandboxed test instances.
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.WindowSize(w, h),
	}
	for k, v := range o.ExtraFlags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	actx, cancelA := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancelB()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelB()
		cancelA() // kills the process it started (by pid) and waits for it
	})
	return ctx
}
