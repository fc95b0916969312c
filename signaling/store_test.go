package signaling_test

// The Store conformance suite: the same black-box tests run against
// MemoryStore and RedisStore (on a private redis-server), so the two
// implementations cannot drift apart.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/redistest"
	"github.com/ferrydev/ferry/internal/testenv"
	"github.com/ferrydev/ferry/signaling"
)

// storeKind makes n handles on one shared store, as n server instances see
// it: the same MemoryStore n times, or n RedisStore clients of one Redis
// with one key prefix. Every handle uses clk as its clock.
type storeKind struct {
	name string
	open func(t *testing.T, clk *clock, n int) []signaling.Store
}

func storeKinds(parent *testing.T) []storeKind {
	var rs *redistest.Server
	prefixes := 0
	return []storeKind{
		{"memory", func(t *testing.T, clk *clock, n int) []signaling.Store {
			m := signaling.NewMemoryStore(clk.Now)
			out := make([]signaling.Store, n)
			for i := range out {
				out[i] = m
			}
			return out
		}},
		{"redis", func(t *testing.T, clk *clock, n int) []signaling.Store {
			testenv.Heavy(t, "redis-server") // before Start skips parent from this goroutine
			if rs == nil {
				rs = redistest.Start(parent) // one server for all subtests of a test
			}
			prefixes++
			// A fresh prefix per subtest: a shared Redis is exactly what
			// prefixes are for, and it keeps subtests independent.
			prefix := fmt.Sprintf("ferrytest%d:", prefixes)
			out := make([]signaling.Store, n)
			for i := range out {
				out[i] = openRedis(t, rs, prefix, clk.Now)
			}
			return out
		}},
	}
}

func openRedis(t *testing.T, rs *redistest.Server, prefix string, now func() time.Time) *signaling.RedisStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := signaling.NewRedisStoreWith(ctx, signaling.RedisOptions{URL: rs.URL(), Prefix: prefix, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachStore runs f as a subtest per store kind. Redis subtests share
// one redis-server, started by the first that needs it (t.Cleanup of the
// parent test stops it).
func forEachStore(t *testing.T, f func(t *testing.T, ctx context.Context, clk *clock, open func(n int) []signaling.Store)) {
	kinds := storeKinds(t)
	for _, k := range kinds {
		t.Run(k.name, func(st *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			clk := &clock{t: time.Unix(1_800_000_000, 0)}
			f(st, ctx, clk, func(n int) []signaling.Store { return k.open(st, clk, n) })
		})
	}
}

func newTicket(id string, now time.Time, ttl time.Duration) signaling.Ticket {
	return signaling.Ticket{ID: id, Created: now, Expires: now.Add(ttl), CreatorIP: "192.0.2.7"}
}

func TestStoreTickets(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		a, b := st[0], st[1]
		tk := newTicket("AAAAAAAAAAAA", clk.Now(), time.Hour)
		if err := a.CreateTicket(ctx, tk); err != nil {
			t.Fatal(err)
		}
		if err := b.CreateTicket(ctx, tk); !errors.Is(err, signaling.ErrExists) {
			t.Fatalf("duplicate create on another instance: %v, want ErrExists", err)
		}
		got, err := b.ConsumeTicket(ctx, tk.ID, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != tk.ID || !got.Created.Equal(tk.Created) || !got.Expires.Equal(tk.Expires) || got.CreatorIP != tk.CreatorIP {
			t.Fatalf("consumed %+v, created %+v", got, tk)
		}
		for i, s := range st {
			if _, err := s.ConsumeTicket(ctx, tk.ID, clk.Now()); !errors.Is(err, signaling.ErrUsed) {
				t.Fatalf("second consume on instance %d: %v, want ErrUsed", i, err)
			}
		}
		// A used ticket stays used, even past its expiry (tombstone).
		if _, err := a.ConsumeTicket(ctx, tk.ID, clk.Now().Add(2*time.Hour)); !errors.Is(err, signaling.ErrUsed) {
			t.Fatalf("consume of a used ticket after expiry: %v, want ErrUsed", err)
		}
		if _, err := a.ConsumeTicket(ctx, "BBBBBBBBBBBB", clk.Now()); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("unknown ticket: %v, want ErrNotFound", err)
		}
		// Deleting a used ticket keeps the tombstone.
		if err := a.DeleteTicket(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ConsumeTicket(ctx, tk.ID, clk.Now()); !errors.Is(err, signaling.ErrUsed) {
			t.Fatalf("consume after deleting a used ticket: %v, want ErrUsed", err)
		}
		if err := a.DeleteTicket(ctx, "CCCCCCCCCCCC"); err != nil {
			t.Fatalf("deleting an unknown ticket: %v", err)
		}
	})
}

func TestStoreTicketExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		s := open(1)[0]
		tk := newTicket("EEEEEEEEEEEE", clk.Now(), time.Hour)
		if err := s.CreateTicket(ctx, tk); err != nil {
			t.Fatal(err)
		}
		// The decision uses the now passed in, to the nanosecond: the
		// ticket is valid before Expires and expired from Expires on.
		if _, err := s.ConsumeTicket(ctx, tk.ID, tk.Expires); !errors.Is(err, signaling.ErrExpired) {
			t.Fatalf("consume at expiry: %v, want ErrExpired", err)
		}
		if _, err := s.ConsumeTicket(ctx, tk.ID, tk.Expires.Add(23*time.Hour)); !errors.Is(err, signaling.ErrExpired) {
			t.Fatalf("consume within the tombstone grace: %v, want ErrExpired", err)
		}
		// Expired is not used: an earlier clock (another instance's) may
		// still consume it.
		if _, err := s.ConsumeTicket(ctx, tk.ID, tk.Expires.Add(-time.Nanosecond)); err != nil {
			t.Fatalf("consume 1 ns before expiry: %v", err)
		}
		if _, err := s.ConsumeTicket(ctx, tk.ID, tk.Expires.Add(time.Hour)); !errors.Is(err, signaling.ErrUsed) {
			t.Fatalf("consume after use: %v, want ErrUsed", err)
		}
	})
}

func TestStoreDeleteUnconsumed(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		tk := newTicket("DDDDDDDDDDDD", clk.Now(), time.Hour)
		if err := st[0].CreateTicket(ctx, tk); err != nil {
			t.Fatal(err)
		}
		if err := st[1].DeleteTicket(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st[0].ConsumeTicket(ctx, tk.ID, clk.Now()); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("consume after the sender left: %v, want ErrNotFound", err)
		}
		// The id is free again.
		if err := st[1].CreateTicket(ctx, tk); err != nil {
			t.Fatalf("re-create after delete: %v", err)
		}
	})
}

// TestStoreDeleteExpired: the sender of an expired ticket leaving (the
// server closes it at expiry) keeps the ticket as a tombstone, so a late
// receiver hears "expired" rather than "unknown" (PROTOCOL.md §2.2).
func TestStoreDeleteExpired(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		tk := newTicket("XXXXXXXXXXXX", clk.Now(), time.Hour)
		if err := st[0].CreateTicket(ctx, tk); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		if err := st[1].DeleteTicket(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		for i, s := range st {
			if _, err := s.ConsumeTicket(ctx, tk.ID, clk.Now()); !errors.Is(err, signaling.ErrExpired) {
				t.Fatalf("consume on instance %d after the expired ticket's sender left: %v, want ErrExpired", i, err)
			}
		}
		if n, err := st[0].LiveTickets(ctx, 10); err != nil || len(n) != 0 {
			t.Fatalf("live tickets %v, %v; want none", n, err)
		}
	})
}

// TestStoreConcurrentConsume races many consumers, spread over instances,
// for each of several tickets: exactly one may win each.
func TestStoreConcurrentConsume(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(4)
		const tickets, racers = 20, 16
		for i := range tickets {
			id := fmt.Sprintf("RACE%08d", i)
			if err := st[i%len(st)].CreateTicket(ctx, newTicket(id, clk.Now(), time.Hour)); err != nil {
				t.Fatal(err)
			}
			var wins, used atomic.Int32
			var other sync.Map
			start := make(chan struct{})
			var wg sync.WaitGroup
			for r := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := st[r%len(st)].ConsumeTicket(ctx, id, clk.Now())
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, signaling.ErrUsed):
						used.Add(1)
					default:
						other.Store(r, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			other.Range(func(k, v any) bool { t.Errorf("racer %v: %v", k, v); return true })
			if wins.Load() != 1 || used.Load() != racers-1 {
				t.Fatalf("ticket %s: %d winners, %d ErrUsed; want 1 and %d", id, wins.Load(), used.Load(), racers-1)
			}
		}
	})
}

func TestStoreSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		a, b := st[0], st[1]
		s := signaling.Session{ID: "hXbMvLI9Z-D5wXw9jb0Y3g", TicketID: "AAAAAAAAAAAA"}
		if _, err := a.GetSession(ctx, s.ID); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("get before put: %v", err)
		}
		if err := a.TouchSession(ctx, s.ID, time.Hour); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("touch before put: %v, want ErrNotFound", err)
		}
		if err := a.PutSession(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		// Put-once, across instances.
		if err := b.PutSession(ctx, signaling.Session{ID: s.ID, TicketID: "ZZZZZZZZZZZZ"}, time.Hour); !errors.Is(err, signaling.ErrExists) {
			t.Fatalf("second put: %v, want ErrExists", err)
		}
		if got, err := b.GetSession(ctx, s.ID); err != nil || got != s {
			t.Fatalf("get = %+v, %v; want %+v", got, err, s)
		}
		// Touch extends the life from now.
		clk.Advance(59 * time.Minute)
		if err := b.TouchSession(ctx, s.ID, time.Hour); err != nil {
			t.Fatal(err)
		}
		clk.Advance(59 * time.Minute)
		if _, err := a.GetSession(ctx, s.ID); err != nil {
			t.Fatalf("get after touch: %v", err)
		}
		clk.Advance(time.Minute)
		if _, err := a.GetSession(ctx, s.ID); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("get at expiry: %v, want ErrNotFound", err)
		}
		// An expired session cannot be revived by a touch...
		if err := a.TouchSession(ctx, s.ID, time.Hour); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("touch after expiry: %v, want ErrNotFound", err)
		}
		if _, err := a.GetSession(ctx, s.ID); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("get after touching an expired session: %v, want ErrNotFound", err)
		}
		// ...but its id may be registered again.
		s2 := signaling.Session{ID: s.ID, TicketID: "YYYYYYYYYYYY"}
		if err := b.PutSession(ctx, s2, time.Hour); err != nil {
			t.Fatalf("put over an expired session: %v", err)
		}
		if got, err := a.GetSession(ctx, s.ID); err != nil || got != s2 {
			t.Fatalf("get = %+v, %v; want %+v", got, err, s2)
		}
		if err := b.DeleteSession(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.GetSession(ctx, s.ID); !errors.Is(err, signaling.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		if err := a.DeleteSession(ctx, s.ID); err != nil {
			t.Fatalf("deleting a deleted session: %v", err)
		}
		if err := a.PutSession(ctx, s, time.Hour); err != nil {
			t.Fatalf("put after delete: %v", err)
		}
	})
}

// TestStoreLinks: a link's liveness (which TURN credentials depend on) is
// shared by instances, only ever extended by KeepLink, ended by EndLink,
// and over at the time it was kept until.
func TestStoreLinks(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		a, b := st[0], st[1]
		alive := func(s signaling.Store, id string) bool {
			t.Helper()
			ok, err := s.LinkAlive(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if alive(a, "AAAAAAAAAAAA") {
			t.Fatal("a link never kept is alive")
		}
		if err := a.KeepLink(ctx, "AAAAAAAAAAAA", clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// A shorter keep does not shorten it.
		if err := b.KeepLink(ctx, "AAAAAAAAAAAA", clk.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if !alive(b, "AAAAAAAAAAAA") || alive(b, "BBBBBBBBBBBB") {
			t.Fatal("want exactly the kept link alive on the other instance")
		}
		clk.Advance(59 * time.Minute)
		if !alive(a, "AAAAAAAAAAAA") {
			t.Fatal("a later, shorter keep shortened the link's life")
		}
		clk.Advance(time.Minute)
		if alive(a, "AAAAAAAAAAAA") {
			t.Fatal("link alive past the time it was kept until")
		}
		if err := a.KeepLink(ctx, "BBBBBBBBBBBB", clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := b.EndLink(ctx, "BBBBBBBBBBBB"); err != nil {
			t.Fatal(err)
		}
		if alive(a, "BBBBBBBBBBBB") {
			t.Fatal("link alive after EndLink")
		}
	})
}

func TestStoreSlots(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		a, b := st[0], st[1]
		const key, ttl = "s:hXbMvLI9Z-D5wXw9jb0Y3g", 90 * time.Second
		c1, c2, c3 := "instA/c1", "instB/c2", "instA/c3"
		slot := func(s signaling.Store, role string) string {
			t.Helper()
			h, err := s.Slot(ctx, key, role)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		claim := func(s signaling.Store, role, conn string) string {
			t.Helper()
			prev, err := s.ClaimSlot(ctx, key, role, conn, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return prev
		}
		refresh := func(s signaling.Store, role, conn string) bool {
			t.Helper()
			ok, err := s.RefreshSlot(ctx, key, role, conn, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if h := slot(a, "S"); h != "" {
			t.Fatalf("empty slot held by %q", h)
		}
		if prev := claim(a, "S", c1); prev != "" {
			t.Fatalf("first claim: prev %q", prev)
		}
		if h := slot(b, "S"); h != c1 {
			t.Fatalf("slot = %q, want %q", h, c1)
		}
		if h := slot(b, "R"); h != "" {
			t.Fatalf("other role held by %q", h)
		}
		if h, _ := b.Slot(ctx, "t:other", "S"); h != "" {
			t.Fatalf("other key held by %q", h)
		}
		// Takeover from another instance returns the previous holder.
		if prev := claim(b, "S", c2); prev != c1 {
			t.Fatalf("takeover: prev %q, want %q", prev, c1)
		}
		if refresh(a, "S", c1) {
			t.Fatal("replaced holder could refresh")
		}
		if h := slot(a, "S"); h != c2 {
			t.Fatalf("slot after stale refresh = %q, want %q", h, c2)
		}
		// Refresh keeps the slot past its original ttl.
		clk.Advance(80 * time.Second)
		if !refresh(a, "S", c2) {
			t.Fatal("holder could not refresh")
		}
		clk.Advance(80 * time.Second)
		if h := slot(a, "S"); h != c2 {
			t.Fatalf("refreshed slot = %q, want %q", h, c2)
		}
		// Release is compare-and-delete.
		if err := a.ReleaseSlot(ctx, key, "S", c1); err != nil {
			t.Fatal(err)
		}
		if h := slot(a, "S"); h != c2 {
			t.Fatalf("release by a non-holder cleared the slot: %q", h)
		}
		if err := a.ReleaseSlot(ctx, key, "S", c2); err != nil {
			t.Fatal(err)
		}
		if h := slot(b, "S"); h != "" {
			t.Fatalf("released slot held by %q", h)
		}
		// A slot nobody refreshes expires (a crashed instance's).
		claim(a, "R", c3)
		clk.Advance(ttl)
		if h := slot(b, "R"); h != "" {
			t.Fatalf("expired slot held by %q", h)
		}
		if refresh(a, "R", c3) {
			t.Fatal("expired holder could refresh")
		}
		if prev := claim(b, "R", c2); prev != "" {
			t.Fatalf("claim of an expired slot: prev %q, want none", prev)
		}
		if h := slot(a, "R"); h != c2 {
			t.Fatalf("slot = %q, want %q", h, c2)
		}
	})
}

func TestStorePubSub(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		a, b := st[0], st[1]
		subCtx, unsub := context.WithCancel(ctx)
		defer unsub()
		inA, err := a.Subscribe(subCtx, "instA")
		if err != nil {
			t.Fatal(err)
		}
		inB, err := b.Subscribe(subCtx, "instB")
		if err != nil {
			t.Fatal(err)
		}
		// Nobody listens to instC: publishing is not an error.
		if err := a.Publish(ctx, "instC", []byte("void")); err != nil {
			t.Fatal(err)
		}
		// Binary-safe payloads, in order, across instances, both ways.
		const n = 300
		msg := func(i int) []byte { return []byte{byte(i), 0, 0xff, byte(i >> 8), '\n', '"'} }
		for i := range n {
			if err := b.Publish(ctx, "instA", msg(i)); err != nil {
				t.Fatal(err)
			}
			if err := a.Publish(ctx, "instB", msg(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		recv := func(c <-chan []byte) []byte {
			t.Helper()
			select {
			case m := <-c:
				return m
			case <-ctx.Done():
				t.Fatal("timed out waiting for a message")
				return nil
			}
		}
		for i := range n {
			if m := recv(inA); !slices.Equal(m, msg(i)) {
				t.Fatalf("instA message %d = %x, want %x", i, m, msg(i))
			}
			if m := recv(inB); !slices.Equal(m, msg(i+1)) {
				t.Fatalf("instB message %d = %x, want %x", i, m, msg(i+1))
			}
		}
		// Nothing else arrived: instC's message went nowhere. A marker
		// published last proves the queue is drained up to it.
		if err := a.Publish(ctx, "instA", []byte("end")); err != nil {
			t.Fatal(err)
		}
		if m := recv(inA); string(m) != "end" {
			t.Fatalf("unexpected message %q", m)
		}
	})
}

func TestStoreStatsAndLiveTickets(t *testing.T) {
	forEachStore(t, func(t *testing.T, ctx context.Context, clk *clock, open func(int) []signaling.Store) {
		st := open(2)
		a, b := st[0], st[1]
		ids := []string{"LIVE00000001", "LIVE00000002", "LIVE00000003", "LIVE00000004", "LIVE00000005"}
		for i, id := range ids {
			// Lifetimes 1h..5h.
			if err := st[i%2].CreateTicket(ctx, newTicket(id, clk.Now(), time.Duration(i+1)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.ConsumeTicket(ctx, ids[1], clk.Now()); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteTicket(ctx, ids[2]); err != nil {
			t.Fatal(err)
		}
		for i, sid := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"} {
			if err := st[i].PutSession(ctx, signaling.Session{ID: sid, TicketID: ids[1]}, time.Duration(i+1)*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		check := func(wantLive []string, wantSessions int) {
			t.Helper()
			for i, s := range st {
				stats, err := s.Stats(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if stats.LiveTickets != len(wantLive) || stats.Sessions != wantSessions {
					t.Fatalf("instance %d: stats %+v, want %d live tickets, %d sessions", i, stats, len(wantLive), wantSessions)
				}
				live, err := s.LiveTickets(ctx, 100)
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(live)
				if !slices.Equal(live, wantLive) {
					t.Fatalf("instance %d: live tickets %v, want %v", i, live, wantLive)
				}
				// The limit is respected, and what is listed is live.
				some, err := s.LiveTickets(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(wantLive) > 0 && (len(some) != 1 || !slices.Contains(wantLive, some[0])) {
					t.Fatalf("instance %d: LiveTickets(1) = %v", i, some)
				}
			}
		}
		check([]string{ids[0], ids[3], ids[4]}, 2)
		clk.Advance(time.Hour) // ids[0] and session A expire
		check([]string{ids[3], ids[4]}, 1)
		if g, ok := a.(interface{ GC() }); ok {
			g.GC() // collecting garbage changes nothing visible
		}
		check([]string{ids[3], ids[4]}, 1)
		clk.Advance(4 * time.Hour)
		check(nil, 0)
	})
}
