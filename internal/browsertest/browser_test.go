package browsertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/browsertest"
)

func TestChromiumStarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := browsertest.New(t, ctx, browsertest.Options{})
	got, err := chromedp.Run(b, chromedp.Evaluate[int](`6*7`))
	if err != nil {
		t.Fatal(err)
	}
	if got != 42 {
		t.Fatalf("6*7 = %d", got)
	}
}
