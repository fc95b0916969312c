package netlab

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/ferrydev/ferry/internal/browsertest"
)

// Browser starts headless Chromium inside the namespace (through a script
// that execs `ip netns exec NS chromium`, so chromedp's pid is the
// browser's) and returns its chromedp context; it ends with the test.
// origin (the lab server's http://ServerIP:HTTPPort) is treated as a
// secure context, which Web Crypto, service workers and the origin-private
// file system need and which a plain-HTTP, non-localhost origin is not.
func (n *NS) Browser(ctx context.Context, origin string) context.Context {
	t := n.lab.t
	t.Helper()
	browsertest.Require(t)
	if err := n.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "chromium-in-"+n.Role)
	body := "#!/bin/sh\nexec ip netns exec " + n.Name + " " + browsertest.Path() + ` "$@"` + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return browsertest.New(t, ctx, browsertest.Options{
		ExecPath:   script,
		ExtraFlags: map[string]any{"unsafely-treat-insecure-origin-as-secure": origin},
	})
}
