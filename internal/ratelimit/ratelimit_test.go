package ratelimit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/ratelimit"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := ratelimit.New(time.Second, 3, func() time.Time { return now })
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("event %d refused within burst", i)
		}
	}
	if l.Allow(a) {
		t.Fatal("event past burst allowed")
	}
	if !l.Allow(b) {
		t.Fatal("other address limited")
	}
	now = now.Add(time.Second)
	if !l.Allow(a) {
		t.Fatal("token not refilled after interval")
	}
	// One IPv6 /64 is one client.
	v6a := netip.MustParseAddr("2001:db8::1")
	v6b := netip.MustParseAddr("2001:db8::ffff")
	for range 3 {
		l.Allow(v6a)
	}
	if l.Allow(v6b) {
		t.Fatal("same /64 not grouped")
	}
	if !ratelimit.New(0, 0, nil).Allow(a) {
		t.Fatal("disabled limiter refused")
	}
}
