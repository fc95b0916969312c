package signaling_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/redistest"
	"github.com/ferrydev/ferry/signaling"
	"github.com/redis/go-redis/v9"
)

func rawRedis(t *testing.T, rs *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisStoreKeys checks what lands in Redis: everything under the
// prefix, TTLs that collect garbage (ticket lifetime plus the tombstone
// grace, session and slot ttl), and prefixes that keep deployments apart.
func TestRedisStoreKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	s, err := signaling.NewRedisStore(ctx, rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	tk := newTicket("KKKKKKKKKKKK", now, time.Hour)
	if err := s.CreateTicket(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, signaling.Session{ID: "SSSSSSSSSSSSSSSSSSSSSS", TicketID: tk.ID}, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimSlot(ctx, "t:"+tk.ID, "S", "inst/conn", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, signaling.DefaultRedisPrefix) {
			t.Errorf("key %q outside the prefix %q", k, signaling.DefaultRedisPrefix)
		}
	}
	ttl := func(key string, lo, hi time.Duration) {
		t.Helper()
		d, err := raw.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d < lo || d > hi {
			t.Errorf("TTL of %s = %v, want %v..%v", key, d, lo, hi)
		}
	}
	ttl("ferry:t:"+tk.ID, 24*time.Hour+59*time.Minute, 25*time.Hour)
	ttl("ferry:s:SSSSSSSSSSSSSSSSSSSSSS", 119*time.Minute, 2*time.Hour)
	ttl("ferry:slot:t:"+tk.ID+"|S", 89*time.Second, 90*time.Second)
	if ip, _ := raw.HGet(ctx, "ferry:t:"+tk.ID, "j").Result(); !strings.Contains(ip, tk.CreatorIP) {
		t.Fatalf("live ticket %q lacks its creator address", ip)
	}
	// Consuming keeps the tombstone's TTL (it is not reset to "forever"),
	// and the tombstone does not keep the creator's address.
	if _, err := s.ConsumeTicket(ctx, tk.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	ttl("ferry:t:"+tk.ID, 24*time.Hour+59*time.Minute, 25*time.Hour)
	if n, err := raw.HExists(ctx, "ferry:t:"+tk.ID, "j").Result(); err != nil || n {
		t.Fatalf("tombstone still holds the ticket (creator address): %v %v", n, err)
	}

	// Another prefix on the same Redis is another world.
	other, err := signaling.NewRedisStoreWith(ctx, signaling.RedisOptions{URL: rs.URL(), Prefix: "other:"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ConsumeTicket(ctx, tk.ID, time.Now()); !errors.Is(err, signaling.ErrNotFound) {
		t.Fatalf("ticket visible under another prefix: %v", err)
	}
	if err := other.CreateTicket(ctx, tk); err != nil {
		t.Fatalf("same id under another prefix: %v", err)
	}
	msgs, err := other.Subscribe(ctx, "inst")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, "inst", []byte("ferry")); err != nil {
		t.Fatal(err)
	}
	if err := other.Publish(ctx, "inst", []byte("other")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if string(m) != "other" {
			t.Fatalf("message crossed prefixes: %q", m)
		}
	case <-ctx.Done():
		t.Fatal("timed out")
	}
}

// TestRedisStoreRestart: after Redis restarts (empty, as without
// persistence) the store works again without being recreated, and the
// instance subscription is re-established by itself.
func TestRedisStoreRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := redistest.Start(t)
	a := openRedis(t, rs, "ferry:", nil)
	b := openRedis(t, rs, "ferry:", nil)
	msgs, err := a.Subscribe(ctx, "instA")
	if err != nil {
		t.Fatal(err)
	}
	rs.Restart()

	// Poll (bounded by ctx): publish numbered probes until one arrives.
	probe := 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for got := false; !got; {
		select {
		case m := <-msgs:
			got = strings.HasPrefix(string(m), "probe")
		case <-tick.C:
			probe++
			_ = b.Publish(ctx, "instA", fmt.Appendf(nil, "probe %d", probe))
		case <-ctx.Done():
			t.Fatalf("no message through the subscription after the restart (%d probes)", probe)
		}
	}
	tk := newTicket("RRRRRRRRRRRR", time.Now(), time.Hour)
	if err := b.CreateTicket(ctx, tk); err != nil {
		t.Fatalf("create after restart: %v", err)
	}
	if _, err := a.ConsumeTicket(ctx, tk.ID, time.Now()); err != nil {
		t.Fatalf("consume after restart: %v", err)
	}
}

// TestRedisStoreDown: with Redis gone every method fails with an error the
// server maps to "internal", never with a misleading sentinel like
// ErrNotFound; and a store cannot be opened on a dead address.
func TestRedisStoreDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := redistest.Start(t)
	s := openRedis(t, rs, "ferry:", nil)
	rs.Stop()
	// Each call fails only after go-redis gave up dialing; run them at once.
	calls := map[string]func() error{
		"CreateTicket":  func() error { return s.CreateTicket(ctx, newTicket("DOWNDOWNDOWN", time.Now(), time.Hour)) },
		"ConsumeTicket": func() error { _, err := s.ConsumeTicket(ctx, "DOWNDOWNDOWN", time.Now()); return err },
		"DeleteTicket":  func() error { return s.DeleteTicket(ctx, "DOWNDOWNDOWN") },
		"PutSession":    func() error { return s.PutSession(ctx, signaling.Session{ID: "x"}, time.Hour) },
		"GetSession":    func() error { _, err := s.GetSession(ctx, "x"); return err },
		"TouchSession":  func() error { return s.TouchSession(ctx, "x", time.Hour) },
		"DeleteSession": func() error { return s.DeleteSession(ctx, "x") },
		"ClaimSlot":     func() error { _, err := s.ClaimSlot(ctx, "k", "S", "c", time.Minute); return err },
		"RefreshSlot":   func() error { _, err := s.RefreshSlot(ctx, "k", "S", "c", time.Minute); return err },
		"Slot":          func() error { _, err := s.Slot(ctx, "k", "S"); return err },
		"ReleaseSlot":   func() error { return s.ReleaseSlot(ctx, "k", "S", "c") },
		"Publish":       func() error { return s.Publish(ctx, "i", []byte("m")) },
		"Subscribe":     func() error { _, err := s.Subscribe(ctx, "i"); return err },
		"Stats":         func() error { _, err := s.Stats(ctx); return err },
		"LiveTickets":   func() error { _, err := s.LiveTickets(ctx, 10); return err },
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	checks := map[string]error{}
	for name, f := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f()
			mu.Lock()
			checks[name] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for name, err := range checks {
		if !errors.Is(err, signaling.ErrInternal) {
			t.Errorf("%s with Redis down: %v, want ErrInternal", name, err)
		}
	}
	if _, err := signaling.NewRedisStore(ctx, rs.URL()); err == nil {
		t.Fatal("NewRedisStore succeeded on a stopped Redis")
	}
	if _, err := signaling.NewRedisStore(ctx, "http://localhost/"); err == nil {
		t.Fatal("NewRedisStore accepted an http URL")
	}
}
