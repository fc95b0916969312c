package ratelimit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/ratelimit"
)

func TestGuard(t *testing.T) {
	now := time.Unix(1000, 0)
	g := ratelimit.NewGuard(time.Minute, 2, time.Second, 5, func() time.Time { return now })
	a := netip.MustParseAddr("198.51.100.1")
	for range 10 {
		if g.Wait(a) != 0 {
			t.Fatal("asking spent the budget")
		}
	}
	if g.Fail(a) {
		t.Fatal("budget spent after one failure of two")
	}
	if !g.Fail(a) {
		t.Fatal("budget not spent after two failures of two")
	}
	if w := g.Wait(a); w <= 0 || w > time.Minute {
		t.Fatalf("wait %v, want (0, 1m]", w)
	}
	now = now.Add(time.Minute)
	if w := g.Wait(a); w != 0 {
		t.Fatalf("wait %v after the budget refilled", w)
	}
	// The global budget (refilled by now): 5 failures from 5 addresses
	// spend it for everyone.
	now = now.Add(time.Hour)
	for i := range 5 {
		g.Fail(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}))
	}
	fresh := netip.MustParseAddr("192.0.2.1")
	if w := g.Wait(fresh); w <= 0 || w > time.Second {
		t.Fatalf("a fresh address after the global budget: wait %v, want (0, 1s]", w)
	}
	now = now.Add(time.Second)
	if g.Wait(fresh) != 0 {
		t.Fatal("global budget not refilled")
	}
}
