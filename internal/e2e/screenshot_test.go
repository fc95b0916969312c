package e2e_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/browsertest"
)

func screenshotDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "screenshots")
}

// Fixed data for the scenes: nothing in the pixels may vary between runs
// (ticket ids, secrets, phrases, times and speeds are all given here).
var (
	sceneFiles = []map[string]any{
		{"path": "Holiday 2025/IMG_0412.jpg", "size": 4_218_733},
		{"path": "Holiday 2025/IMG_0413.jpg", "size": 3_907_112},
		{"path": "Holiday 2025/clips/beach at dusk.mp4", "size": 312_560_044},
		{"path": "Holiday 2025/notes.txt", "size": 2_145},
	}
	sceneRoots = []string{
		"9f2c4e1ab07d53c8e6f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8",
		"41d8cd98f00b204e9800998ecf8427e0a1b2c3d4e5f60718293a4b5c6d7e8f90",
		"c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2",
		"7e240de74fb1ed08fa08d38063f6a6a91462a815c8a2b6d2e1f0a3b4c5d6e7f8",
	}
	scenePhrase = []string{"harbor", "velvet", "lantern", "orbit"}
	sceneLink   = "https://ferry.example.org/r#q7Vx2mTa9LpK.m3Xf8QeR1tYw6ZbN4cVdHg"
)

type scene struct {
	name string
	url  string // page path
	data map[string]any
}

func screenshotScenes() []scene {
	progress := []int{4_218_733, 3_907_112, 131_072_000, 0}
	partRoots := []string{sceneRoots[0], sceneRoots[1], "", ""}
	return []scene{
		{"send-empty", "/", map[string]any{"page": "send", "step": "idle"}},
		{"send-signin", "/", map[string]any{"page": "send", "step": "signin",
			"me": map[string]any{"signInRequired": true, "signInUrl": "/auth/login", "maySend": false}}},
		{"send-link", "/", map[string]any{"page": "send", "step": "link", "files": sceneFiles,
			"link": sceneLink, "expires": 1767268800, "canShare": true,
			"me": map[string]any{"signInRequired": true, "signInUrl": "/auth/login", "user": "alice@example.org", "maySend": true}}},
		{"send-progress", "/", map[string]any{"page": "send", "step": "transferring", "files": sceneFiles,
			"phrase": scenePhrase, "path": "direct", "fileDone": progress, "roots": partRoots, "rate": 24_600_000}},
		{"send-done", "/", map[string]any{"page": "send", "step": "done", "files": sceneFiles,
			"phrase": scenePhrase, "path": "direct", "fileDone": []int{4_218_733, 3_907_112, 312_560_044, 2_145}, "roots": sceneRoots}},
		{"receive-ready", "/r", map[string]any{"page": "receive", "step": "ready"}},
		{"receive-offer", "/r", map[string]any{"page": "receive", "step": "review", "files": sceneFiles,
			"phrase": scenePhrase, "path": "direct", "mode": "zip"}},
		{"receive-progress", "/r", map[string]any{"page": "receive", "step": "transferring", "files": sceneFiles,
			"phrase": scenePhrase, "path": "relay", "mode": "zip", "fileDone": progress, "roots": partRoots, "rate": 18_300_000}},
		{"receive-error", "/r", map[string]any{"page": "receive", "step": "error", "title": "This link does not work",
			"error": "This link was already opened by someone. Links work only once: ask the sender for a new one."}},
		{"receive-done", "/r", map[string]any{"page": "receive", "step": "done",
			"files":  []map[string]any{{"path": "Quarterly report 2025.pdf", "size": 18_402_991}},
			"phrase": scenePhrase, "path": "direct", "mode": "file", "fileDone": []int{18_402_991}, "roots": sceneRoots[2:3]}},
	}
}

// TestScreenshots renders the send and receive pages in fixed states
// (through the page's test scenes, the same view code the live pages
// use) at desktop and phone sizes, light and dark, and compares them with
// the baselines in testdata/screenshots (FERRY_UPDATE_GOLDEN=1 rewrites
// them). The whole page is captured, however tall.
func TestScreenshots(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	b := browsertest.New(t, ctx, browsertest.Options{})
	if _, err := chromedp.Call(b, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	variants := []struct {
		name          string
		width, height int64
		mobile        bool
		scheme        string
	}{
		{"desktop-light", 1280, 800, false, "light"},
		{"desktop-dark", 1280, 800, false, "dark"},
		{"phone-light", 375, 812, true, "light"},
		{"phone-dark", 375, 812, true, "dark"},
	}
	for _, sc := range screenshotScenes() {
		t.Run(sc.name, func(t *testing.T) {
			js, err := json.Marshal(sc.data)
			if err != nil {
				t.Fatal(err)
			}
			added, err := chromedp.Call(b, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: `window.ferryTest = { scene: ` + string(js) + ` };`,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer chromedp.Call(b, page.RemoveScriptToEvaluateOnNewDocument, page.RemoveScriptToEvaluateOnNewDocumentParams(added))
			for _, v := range variants {
				opts := []chromedp.EmulateViewportOption{}
				if v.mobile {
					opts = append(opts, chromedp.EmulateMobile)
				}
				if _, err := chromedp.Call(b, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v.scheme}, {Name: "prefers-reduced-motion", Value: "reduce"}},
				}); err != nil {
					t.Fatal(err)
				}
				if err := chromedp.Do(b, chromedp.EmulateViewport(v.width, v.height, opts...), chromedp.Navigate(base+sc.url)); err != nil {
					t.Fatal(err)
				}
				h, err := chromedp.Run(b, chromedp.Poll[int](
					`document.body.dataset.scene === "ready" && document.fonts.status === "loaded" ? document.documentElement.scrollHeight : null`,
					chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
				if err != nil {
					t.Fatalf("%s: the scene did not render: %v", v.name, err)
				}
				// The whole page: grow the viewport to the document.
				if int64(h) > v.height {
					if err := chromedp.Do(b, chromedp.EmulateViewport(v.width, int64(h), opts...)); err != nil {
						t.Fatal(err)
					}
				}
				shot, err := chromedp.Run(b, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				browsertest.CompareGolden(t, shot, filepath.Join(screenshotDir(), sc.name+"-"+v.name+".png"), browsertest.DefaultTolerance)
			}
		})
	}
}
