package browsertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// LiveLog returns a t.Logf that does nothing once the test has ended:
// browsers and servers keep logging a little after it, and logging after
// a test ended panics.
func LiveLog(t testing.TB) func(format string, args ...any) {
	var mu sync.Mutex
	ended := false
	t.Cleanup(func() {
		mu.Lock()
		ended = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !ended {
			t.Logf(format, args...)
		}
	}
}

// LogConsole copies what page b logs to its console into the test log,
// each line with the time and name, while the test runs: the pages log
// every step of pairing, connecting and reconnecting, which is what a
// failure needs (go test prints it for failed tests, or with -v).
func LogConsole(t testing.TB, b context.Context, name string) {
	logf := LiveLog(t)
	msgs := chromedp.Console(b)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			logf("%s [%s console.%s] %s", time.Now().Format("15:04:05.000"), name, m.Type, m)
		}
	}()
}
