package ratelimit_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/internal/ratelimit"
	"github.com/ferrydev/ferry/internal/redistest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1 // a stopped Redis fails at once
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestShared: two limiters on one Redis (two instances) limit a client
// together, exactly like one local limiter; other prefixes and clients are
// apart; without Redis each falls back to its own bucket.
func TestShared(t *testing.T) {
	rs := redistest.Start(t)
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mk := func(prefix string) *ratelimit.Limiter {
		return ratelimit.NewShared(time.Second, 3, clock, ratelimit.RedisOptions{Client: client(t, rs.URL()), Prefix: prefix, Logger: log})
	}
	one, two, other := mk("ferry:rl:create:"), mk("ferry:rl:create:"), mk("ferry:rl:join:")
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	for i, l := range []*ratelimit.Limiter{one, two, one} {
		if !l.Allow(a) {
			t.Fatalf("event %d refused within the shared burst", i)
		}
	}
	if two.Allow(a) || one.Allow(a) {
		t.Fatal("a fourth event allowed: the instances do not share the count")
	}
	if !two.Allow(b) {
		t.Fatal("another address limited")
	}
	if !other.Allow(a) {
		t.Fatal("another limit's prefix shares the count")
	}
	now = now.Add(time.Second)
	if !two.Allow(a) {
		t.Fatal("token not refilled after the interval")
	}
	if one.Allow(a) {
		t.Fatal("more than one token refilled")
	}
	// One IPv6 /64 is one client here too.
	for range 3 {
		one.Allow(netip.MustParseAddr("2001:db8::1"))
	}
	if two.Allow(netip.MustParseAddr("2001:db8::ffff")) {
		t.Fatal("same /64 not grouped")
	}
	// Keys expire once their bucket would be full again.
	ttl, err := client(t, rs.URL()).PTTL(t.Context(), "ferry:rl:create:198.51.100.2").Result()
	if err != nil || ttl <= 0 || ttl > time.Second {
		t.Fatalf("key TTL %v (%v), want (0, 1s]", ttl, err)
	}

	// Redis gone: each limiter limits on its own, and says so once.
	rs.Stop()
	c := netip.MustParseAddr("198.51.100.3")
	for i := range 3 {
		if !one.Allow(c) || !two.Allow(c) {
			t.Fatalf("event %d refused by the per-instance fallback", i)
		}
	}
	if one.Allow(c) || two.Allow(c) {
		t.Fatal("the per-instance fallback does not limit")
	}
	if n := strings.Count(logs.String(), "Redis unavailable"); n != 2 {
		t.Fatalf("logged the fallback %d times, want once per limiter:\n%s", n, logs.String())
	}
}
