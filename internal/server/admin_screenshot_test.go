package server_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/browsertest"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/signaling"
)

// fixedStore shows the same live tickets every time, so screenshots are stable.
type fixedStore struct{ *signaling.MemoryStore }

func (fixedStore) LiveTickets(context.Context, int) ([]string, error) {
	return []string{"Ab3dEf5hIj7L", "Zx9yW8vU7tS6", "Qq1wE2rT3yU4"}, nil
}

func (fixedStore) Stats(context.Context) (signaling.StoreStats, error) {
	return signaling.StoreStats{LiveTickets: 3, Sessions: 2}, nil
}

func screenshotDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "screenshots")
}

// TestAdminScreenshots renders the admin page in headless Chromium at
// desktop and phone sizes, light and dark, and compares with baselines.
func TestAdminScreenshots(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	log := audit.New(nil, false, 50, clock)
	for i, e := range []audit.Event{
		{Event: audit.TicketCreated, Ticket: "Ab3dEf5hIj7L", Role: "sender", IP: "198.51.100.4", User: "alice@example.org"},
		{Event: audit.TicketJoined, Ticket: "Ab3dEf5hIj7L", Role: "receiver", IP: "203.0.113.9"},
		{Event: audit.TransferCompleted, Ticket: "Ab3dEf5hIj7L", Role: "sender", IP: "198.51.100.4", Path: "direct", Bytes: 734003200, Files: 3},
		{Event: audit.RelayReleased, Ticket: "Zx9yW8vU7tS6", Path: "relay", Bytes: 52428800},
		{Event: audit.TicketRejected, Role: "receiver", IP: "192.0.2.66", Reason: "used"},
	} {
		e.Time = now.Add(time.Duration(i-5) * time.Minute)
		log.Record(e)
	}
	cfg := testConfig()
	cfg.AdminToken = "screenshot-token"
	srv := start(t, cfg, server.Options{
		Now: clock, Audit: log, Version: "test",
		Store: fixedStore{signaling.NewMemoryStore(clock)},
	})

	b := browsertest.New(t, ctx, browsertest.Options{})
	// Overlay scrollbars fade in and out: keep them out of the pixels.
	if _, err := chromedp.Call(b, emulation.SetScrollbarsHidden, emulation.SetScrollbarsHiddenParams{Hidden: true}); err != nil {
		t.Fatal(err)
	}
	// Sign in the way the login form does (its behaviour is covered by
	// TestAdminPage), then load the page: a plain navigation is easier to
	// wait for than a form submission. The fetch runs from /healthz, since
	// the admin page's CSP rightly forbids scripts to connect anywhere.
	if err := chromedp.Do(b, chromedp.Navigate(srv.URL().String()+"/healthz")); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(b, chromedp.Evaluate[int](
		`fetch("/admin/login", {method: "POST", body: new URLSearchParams({token: "screenshot-token"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != 200 {
		t.Fatalf("login: %d %v", status, err)
	}
	if err := chromedp.Do(b, chromedp.Navigate(srv.URL().String()+"/admin"), chromedp.WaitVisible(`table`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		width, height int64
		mobile        bool
		scheme        string
	}{
		{"admin-desktop-light", 1280, 900, false, "light"},
		{"admin-desktop-dark", 1280, 900, false, "dark"},
		{"admin-phone-light", 375, 812, true, "light"},
		{"admin-phone-dark", 375, 812, true, "dark"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := []chromedp.EmulateViewportOption{}
			if c.mobile {
				opts = append(opts, chromedp.EmulateMobile)
			}
			if _, err := chromedp.Call(b, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: c.scheme}},
			}); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(b, chromedp.EmulateViewport(c.width, c.height, opts...), chromedp.WaitVisible(`table`)); err != nil {
				t.Fatal(err)
			}
			shot, err := chromedp.Run(b, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			browsertest.CompareGolden(t, shot, filepath.Join(screenshotDir(), c.name+".png"), browsertest.DefaultTolerance)
		})
	}
}
