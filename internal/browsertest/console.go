package browsertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// LogConsole copies what page b logs to its console into the test log,
// each line with the time and name, while the test runs: the pages log
// every step of pairing, connecting and reconnecting, which is what a
// failure needs (go test prints it for failed tests, or with -v).
func LogConsole(t testing.TB, b context.Context, name string) {
	var mu sync.Mutex
	ended := false
	// Logging after the test ended panics; the console outlives it a little.
	t.Cleanup(func() {
		mu.Lock()
		ended = true
		mu.Unlock()
	})
	msgs := chromedp.Console(b)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			mu.Lock()
			if !ended {
				t.Logf("%s [%s console.%s] %s", time.Now().Format("15:04:05.000"), name, m.Type, m)
			}
			mu.Unlock()
		}
	}()
}
