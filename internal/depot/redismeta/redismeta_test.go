package redismeta_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/depot/depottest"
	"github.com/ferrydev/ferry/internal/depot/redismeta"
	"github.com/ferrydev/ferry/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func rawRedis(t *testing.T, rs *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// instance is one ferry instance's Meta on the shared Redis.
func instance(t *testing.T, rs *redistest.Server, o redismeta.Options) *redismeta.Meta {
	t.Helper()
	o.URL = rs.URL()
	m, err := redismeta.NewWith(depottest.Ctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// checkLedger fails t unless the usage counters under prefix are the sums
// of the ledger, and the ledger and the records name the same ids.
func checkLedger(t *testing.T, raw *redis.Client, prefix string) {
	t.Helper()
	ctx := depottest.Ctx(t)
	ledger, err := raw.HGetAll(ctx, prefix+"ledger").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	sums := map[string]int64{}
	for id, v := range ledger {
		size, owner, _ := strings.Cut(v, "|")
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil {
			t.Fatalf("ledger entry %s = %q", id, v)
		}
		sums["o:"+owner] += n
		sums["total"] += n
	}
	for k, n := range sums {
		if n != 0 {
			want[k] = strconv.FormatInt(n, 10)
		}
	}
	usage, err := raw.HGetAll(ctx, prefix+"usage").Result()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(usage) != fmt.Sprint(want) {
		t.Errorf("usage counters %v, the ledger adds up to %v", usage, want)
	}
	records, err := raw.Keys(ctx, prefix+"t:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range records {
		if _, ok := ledger[strings.TrimPrefix(k, prefix+"t:")]; !ok {
			t.Errorf("record %s has no ledger entry", k)
		}
	}
	if len(records) != len(ledger) {
		t.Errorf("%d records, %d ledger entries", len(records), len(ledger))
	}
}

func TestMeta(t *testing.T) {
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	var n atomic.Int64
	depottest.TestMeta(t, func(t *testing.T) depot.Meta {
		// One server, a prefix per subtest.
		prefix := fmt.Sprintf("ferry:stored:%d:", n.Add(1))
		m := instance(t, rs, redismeta.Options{Prefix: prefix})
		t.Cleanup(func() { checkLedger(t, raw, prefix) })
		return m
	})
}

// TestTwoInstances: a transfer created through one instance is downloaded
// through the other and counted once, and counting, creating and deleting
// from both at once is exact.
func TestTwoInstances(t *testing.T) {
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	ctx := depottest.Ctx(t)
	a := instance(t, rs, redismeta.Options{})
	b := instance(t, rs, redismeta.Options{})
	defer checkLedger(t, raw, redismeta.DefaultPrefix)

	t.Run("counted once", func(t *testing.T) {
		tr := depottest.NewTransfer("x", "alice", 100)
		tr.Limit = 2
		depottest.MustCreate(t, a, tr)
		if err := errors.Join(a.AddPart(ctx, "x", 0), a.SetReady(ctx, "x")); err != nil {
			t.Fatal(err)
		}
		if used, err := b.CountDownload(ctx, "x"); err != nil || used != 1 {
			t.Fatalf("CountDownload on B: %d, %v", used, err)
		}
		if got := depottest.MustGet(t, a, "x"); got.Used != 1 || got.State != depot.Ready || got.Parts != 1 {
			t.Fatalf("A sees %+v, want Used 1, ready, 1 part", got)
		}
		if used, err := a.CountDownload(ctx, "x"); err != nil || used != 2 {
			t.Fatalf("CountDownload on A: %d, %v", used, err)
		}
		if used, err := b.CountDownload(ctx, "x"); !errors.Is(err, depot.ErrUsedUp) || used != 2 {
			t.Fatalf("third download on B: %d, %v, want ErrUsedUp", used, err)
		}
	})

	t.Run("concurrent counting", func(t *testing.T) {
		tr := depottest.NewTransfer("y", "alice", 100)
		tr.Limit, tr.State = 30, depot.Ready
		depottest.MustCreate(t, a, tr)
		var ok, usedUp, other atomic.Int64
		var wg sync.WaitGroup
		for i := range 80 {
			m := []*redismeta.Meta{a, b}[i%2]
			wg.Go(func() {
				_, err := m.CountDownload(ctx, "y")
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, depot.ErrUsedUp):
					usedUp.Add(1)
				default:
					other.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 30 || usedUp.Load() != 50 || other.Load() != 0 {
			t.Fatalf("80 downloads of 30 on two instances: %d counted, %d used up, %d failed", ok.Load(), usedUp.Load(), other.Load())
		}
		if got := depottest.MustGet(t, b, "y").Used; got != 30 {
			t.Fatalf("Used = %d", got)
		}
	})

	t.Run("concurrent create and delete", func(t *testing.T) {
		// Owner carol has nothing yet: 20 creates of 100 bytes against
		// her 700 admit 7, whichever instance each goes through.
		q := depot.Quota{PerOwner: 700}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			m := []*redismeta.Meta{a, b}[i%2]
			wg.Go(func() {
				err := m.Create(ctx, depottest.NewTransfer(fmt.Sprintf("c%02d", i), "carol", 100), q)
				if err == nil {
					admitted.Add(1)
				} else if !errors.Is(err, depot.ErrQuota) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if admitted.Load() != 7 {
			t.Fatalf("%d admitted, want 7", admitted.Load())
		}
		// Both instances delete the same transfer, many times at once:
		// its 100 bytes are freed once.
		var victim string
		if err := a.List(ctx, func(tr depot.Transfer) error {
			if tr.Owner == "carol" {
				victim = tr.ID
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			m := []*redismeta.Meta{a, b}[i%2]
			wg.Go(func() {
				if err := m.Delete(ctx, victim); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := b.Create(ctx, depottest.NewTransfer("d1", "carol", 100), q); err != nil {
			t.Fatalf("after the delete, 100 bytes: %v", err)
		}
		if err := a.Create(ctx, depottest.NewTransfer("d2", "carol", 1), q); !errors.Is(err, depot.ErrQuota) {
			t.Fatalf("one byte more: %v, want ErrQuota (freed twice?)", err)
		}
	})
}

// TestExpiry: Redis drops a record Grace after its Expires by itself (here
// at once: it expired an hour ago and the grace is 1 ms); its bytes stop
// counting at the next Create or List, exactly once, and never before the
// record is gone.
func TestExpiry(t *testing.T) {
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	ctx := depottest.Ctx(t)
	prefix := redismeta.DefaultPrefix
	m := instance(t, rs, redismeta.Options{Grace: time.Millisecond})
	defer checkLedger(t, raw, prefix)
	old := func(id string, size int64) depot.Transfer {
		tr := depottest.NewTransfer(id, "alice", size)
		tr.Expires = time.Now().Add(-time.Hour)
		return tr
	}
	q := depot.Quota{PerOwner: 100, Total: 100}

	depottest.MustCreate(t, m, old("gone", 100))
	if _, err := m.Get(ctx, "gone"); !errors.Is(err, depot.ErrNotFound) {
		t.Fatalf("Get of a record past Expires+Grace: %v, want ErrNotFound", err)
	}
	if u, _ := raw.HGet(ctx, prefix+"usage", "total").Result(); u != "100" {
		t.Fatalf("before reaping, usage = %q, want 100", u)
	}
	if err := m.Create(ctx, depottest.NewTransfer("new", "alice", 100), q); err != nil {
		t.Fatalf("Create after the expired record: %v (its bytes still count?)", err)
	}
	checkLedger(t, raw, prefix)
	if err := m.Create(ctx, depottest.NewTransfer("more", "alice", 1), q); !errors.Is(err, depot.ErrQuota) {
		t.Fatalf("one byte more: %v, want ErrQuota", err)
	}
	if err := m.Delete(ctx, "new"); err != nil {
		t.Fatal(err)
	}

	// Deleting an expired record frees its bytes once; so does creating
	// its id again, and List.
	depottest.MustCreate(t, m, old("del", 60))
	if err := errors.Join(m.Delete(ctx, "del"), m.Delete(ctx, "del")); err != nil {
		t.Fatal(err)
	}
	depottest.MustCreate(t, m, old("again", 60))
	if err := m.Create(ctx, depottest.NewTransfer("again", "alice", 100), q); err != nil {
		t.Fatalf("creating an expired id again: %v", err)
	}
	if err := m.Delete(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	depottest.MustCreate(t, m, old("listed", 60))
	n := 0
	if err := m.List(ctx, func(depot.Transfer) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("List: %d records, %v", n, err)
	}
	if l, _ := raw.HLen(ctx, prefix+"ledger").Result(); l != 0 {
		t.Fatalf("after List, %d ledger entries", l)
	}
	if u, _ := raw.HLen(ctx, prefix+"usage").Result(); u != 0 {
		t.Fatalf("after List, %d usage counters", u)
	}
}

// TestKeys: every key under the prefix, records expiring at Expires + the
// default grace, none without Expires, and two prefixes apart.
func TestKeys(t *testing.T) {
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	ctx := depottest.Ctx(t)
	m := instance(t, rs, redismeta.Options{})
	other := instance(t, rs, redismeta.Options{Prefix: "other:"})
	tr := depottest.NewTransfer("x", "alice", 100)
	tr.Expires = time.Now().Add(time.Hour)
	depottest.MustCreate(t, m, tr)
	forever := depottest.NewTransfer("forever", "bob", 1)
	forever.Expires = time.Time{}
	depottest.MustCreate(t, m, forever)
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, redismeta.DefaultPrefix) {
			t.Errorf("key %q outside the prefix", k)
		}
	}
	d, err := raw.PTTL(ctx, redismeta.DefaultPrefix+"t:x").Result()
	if want := time.Hour + redismeta.DefaultGrace; err != nil || d > want || d < want-time.Minute {
		t.Errorf("TTL of the record = %v (%v), want about %v", d, err, want)
	}
	if d, err := raw.PTTL(ctx, redismeta.DefaultPrefix+"t:forever").Result(); err != nil || d != -1 {
		t.Errorf("TTL of a record without Expires = %v (%v), want none", d, err)
	}
	if _, err := other.Get(ctx, "x"); !errors.Is(err, depot.ErrNotFound) {
		t.Errorf("another prefix sees the record: %v", err)
	}
	if err := other.Create(ctx, depottest.NewTransfer("y", "alice", 100), depot.Quota{Total: 100}); err != nil {
		t.Errorf("another prefix shares the quota: %v", err)
	}
}
