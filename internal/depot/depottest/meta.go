package depottest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
)

// TestMeta runs the conformance tests of depot.Meta. newMeta returns an
// empty store of its own for each subtest and closes it through t.Cleanup.
//
// Beyond what the interface's comments say, the suite holds every backend
// to two rules the server relies on: AddPart of a new part and
// CountDownload need the right state (ErrState: no parts after SetReady,
// no downloads before it), and the empty owner "" is an owner like any other.
func TestMeta(t *testing.T, newMeta func(t *testing.T) depot.Meta) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, newMeta(t)) })
	t.Run("Exists", func(t *testing.T) { testExists(t, newMeta(t)) })
	t.Run("Quota", func(t *testing.T) { testQuota(t, newMeta) })
	t.Run("AddPart", func(t *testing.T) { testAddPart(t, newMeta) })
	t.Run("SetReady", func(t *testing.T) { testSetReady(t, newMeta(t)) })
	t.Run("CountDownload", func(t *testing.T) { testCountDownload(t, newMeta) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newMeta(t)) })
	t.Run("List", func(t *testing.T) { testMetaList(t, newMeta(t)) })
	t.Run("ConcurrentCount", func(t *testing.T) { testConcurrentCount(t, newMeta(t)) })
	t.Run("ConcurrentCreate", func(t *testing.T) { testConcurrentCreate(t, newMeta) })
	t.Run("ConcurrentDelete", func(t *testing.T) { testConcurrentDelete(t, newMeta(t)) })
	t.Run("ConcurrentAddPart", func(t *testing.T) { testConcurrentAddPart(t, newMeta(t)) })
	t.Run("SetGone", func(t *testing.T) { testSetGone(t, newMeta(t)) })
	t.Run("ConcurrentGone", func(t *testing.T) { testConcurrentGone(t, newMeta(t)) })
}

// Ctx bounds one test's calls in time.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// NewTransfer is an uploading transfer of size bytes, expiring in a week,
// with one download, its times in UTC as Get returns them after Normalize.
func NewTransfer(id, owner string, size int64) depot.Transfer {
	now := time.Now().UTC()
	return depot.Transfer{
		ID:        id,
		Owner:     owner,
		ReadHash:  []byte("read-hash-" + id),
		WriteHash: []byte("write-hash-" + id),
		Size:      size,
		Created:   now,
		Expires:   now.Add(7 * 24 * time.Hour),
		Limit:     1,
		State:     depot.Uploading,
		Upload:    "upload-" + id,
	}
}

// Normalize makes records comparable with reflect.DeepEqual: a store may
// give times back in another location and without the monotonic reading.
func Normalize(tr depot.Transfer) depot.Transfer {
	tr.Created = tr.Created.UTC()
	tr.Expires = tr.Expires.UTC()
	return tr
}

// MustCreate creates tr without a quota or fails the test.
func MustCreate(t testing.TB, m depot.Meta, tr depot.Transfer) {
	t.Helper()
	if err := m.Create(Ctx(t), tr, depot.Quota{}); err != nil {
		t.Fatalf("Create(%s): %v", tr.ID, err)
	}
}

// MustGet returns record id or fails the test.
func MustGet(t testing.TB, m depot.Meta, id string) depot.Transfer {
	t.Helper()
	tr, err := m.Get(Ctx(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return Normalize(tr)
}

func metaErr(t testing.TB, what string, got, want error) {
	t.Helper()
	if want == nil && got != nil || want != nil && !errors.Is(got, want) {
		t.Fatalf("%s: err = %v, want %v", what, got, want)
	}
}

func testCreateGet(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	ready := NewTransfer("ready", "bob", 1<<40)
	ready.State, ready.Parts, ready.Used, ready.Limit, ready.Upload = depot.Ready, 7, 2, 5, ""
	for _, tr := range []depot.Transfer{
		NewTransfer("plain", "alice", 1000),
		NewTransfer("anonymous", "", 0),
		// Separators a backend might use inside its keys or values.
		NewTransfer("odd-owner", "ö|:x y\n", 5),
		ready,
	} {
		if err := m.Create(ctx, tr, depot.Quota{}); err != nil {
			t.Fatalf("Create(%s): %v", tr.ID, err)
		}
		if got := MustGet(t, m, tr.ID); !reflect.DeepEqual(got, Normalize(tr)) {
			t.Fatalf("Get(%s) = %+v\nwant %+v", tr.ID, got, Normalize(tr))
		}
	}
	_, err := m.Get(ctx, "missing")
	metaErr(t, "Get(missing)", err, depot.ErrNotFound)
}

func testExists(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	q := depot.Quota{Total: 100}
	a := NewTransfer("a", "alice", 60)
	metaErr(t, "Create(a)", m.Create(ctx, a, q), nil)
	again := NewTransfer("a", "bob", 30)
	metaErr(t, "Create(a) again", m.Create(ctx, again, q), depot.ErrExists)
	if got := MustGet(t, m, "a"); !reflect.DeepEqual(got, Normalize(a)) {
		t.Fatalf("after a refused Create, a = %+v, want %+v", got, Normalize(a))
	}
	// The refused Create took no quota: 40 more bytes still fit.
	metaErr(t, "Create(b)", m.Create(ctx, NewTransfer("b", "bob", 40), q), nil)
}

// quotaStep creates (or, with del, deletes) one transfer.
type quotaStep struct {
	del   bool
	id    string
	owner string
	size  int64
	q     depot.Quota
	want  error
}

func testQuota(t *testing.T, newMeta func(t *testing.T) depot.Meta) {
	own := func(n int64) depot.Quota { return depot.Quota{PerOwner: n} }
	tot := func(n int64) depot.Quota { return depot.Quota{Total: n} }
	del := func(id string) quotaStep { return quotaStep{del: true, id: id} }
	for _, tc := range []struct {
		name  string
		steps []quotaStep
	}{
		{"per owner: exactly at the limit, one byte more", []quotaStep{
			{id: "a", owner: "alice", size: 60, q: own(100)},
			{id: "b", owner: "alice", size: 40, q: own(100)},
			{id: "c", owner: "alice", size: 1, q: own(100), want: depot.ErrQuota},
			{id: "d", owner: "bob", size: 100, q: own(100)},
			{id: "e", owner: "", size: 100, q: own(100)},
			{id: "f", owner: "", size: 1, q: own(100), want: depot.ErrQuota},
			{id: "g", owner: "alice", size: 0, q: own(100)},
		}},
		{"total: exactly at the limit, one byte more", []quotaStep{
			{id: "a", owner: "alice", size: 60, q: tot(100)},
			{id: "b", owner: "bob", size: 40, q: tot(100)},
			{id: "c", owner: "carol", size: 1, q: tot(100), want: depot.ErrQuota},
		}},
		{"both bounds: the tighter refuses", []quotaStep{
			{id: "a", owner: "alice", size: 50, q: depot.Quota{PerOwner: 50, Total: 80}},
			{id: "b", owner: "alice", size: 1, q: depot.Quota{PerOwner: 50, Total: 80}, want: depot.ErrQuota},
			{id: "c", owner: "bob", size: 30, q: depot.Quota{PerOwner: 50, Total: 80}},
			{id: "d", owner: "bob", size: 1, q: depot.Quota{PerOwner: 50, Total: 80}, want: depot.ErrQuota},
		}},
		{"one transfer larger than the quota", []quotaStep{
			{id: "a", owner: "alice", size: 101, q: tot(100), want: depot.ErrQuota},
			{id: "b", owner: "alice", size: 101, q: own(100), want: depot.ErrQuota},
			{id: "c", owner: "alice", size: 100, q: depot.Quota{PerOwner: 100, Total: 100}},
		}},
		{"freed after Delete, once", []quotaStep{
			{id: "a", owner: "alice", size: 100, q: tot(100)},
			{id: "b", owner: "alice", size: 1, q: tot(100), want: depot.ErrQuota},
			del("a"),
			del("a"),
			{id: "b", owner: "alice", size: 1, q: tot(100)},
			{id: "c", owner: "bob", size: 99, q: tot(100)},
			{id: "d", owner: "bob", size: 1, q: tot(100), want: depot.ErrQuota},
		}},
		{"per owner freed after Delete", []quotaStep{
			{id: "a", owner: "alice", size: 70, q: own(100)},
			{id: "b", owner: "alice", size: 30, q: own(100)},
			{id: "c", owner: "alice", size: 70, q: own(100), want: depot.ErrQuota},
			del("a"),
			del("missing"),
			{id: "c", owner: "alice", size: 70, q: own(100)},
			{id: "d", owner: "alice", size: 1, q: own(100), want: depot.ErrQuota},
		}},
		{"records created without a quota count against a later one", []quotaStep{
			{id: "a", owner: "alice", size: 100},
			{id: "b", owner: "alice", size: 1, q: tot(100), want: depot.ErrQuota},
			{id: "c", owner: "alice", size: 1, q: own(100), want: depot.ErrQuota},
			{id: "d", owner: "bob", size: 1, q: own(100)},
		}},
		{"no bound", []quotaStep{
			{id: "a", owner: "alice", size: 1 << 50},
			{id: "b", owner: "alice", size: 1 << 50},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeta(t)
			ctx := Ctx(t)
			for i, s := range tc.steps {
				if s.del {
					metaErr(t, fmt.Sprintf("step %d: Delete(%s)", i, s.id), m.Delete(ctx, s.id), nil)
					continue
				}
				err := m.Create(ctx, NewTransfer(s.id, s.owner, s.size), s.q)
				metaErr(t, fmt.Sprintf("step %d: Create(%s, %s, %d, %+v)", i, s.id, s.owner, s.size, s.q), err, s.want)
				_, err = m.Get(ctx, s.id)
				if s.want == nil {
					metaErr(t, fmt.Sprintf("step %d: Get(%s)", i, s.id), err, nil)
				} else {
					metaErr(t, fmt.Sprintf("step %d: Get(%s) after a refused Create", i, s.id), err, depot.ErrNotFound)
				}
			}
		})
	}
}

func testAddPart(t *testing.T, newMeta func(t *testing.T) depot.Meta) {
	type call struct {
		n         int
		ready     bool // SetReady instead of AddPart
		want      error
		wantParts int
	}
	for _, tc := range []struct {
		name  string
		calls []call
	}{
		{"in order", []call{{n: 0, wantParts: 1}, {n: 1, wantParts: 2}, {n: 2, wantParts: 3}}},
		{"repeated", []call{
			{n: 0, wantParts: 1}, {n: 0, wantParts: 1}, {n: 1, wantParts: 2},
			{n: 1, wantParts: 2}, {n: 0, wantParts: 2},
		}},
		{"out of order", []call{
			{n: 1, want: depot.ErrPart}, {n: -1, want: depot.ErrPart},
			{n: 0, wantParts: 1}, {n: 2, want: depot.ErrPart, wantParts: 1},
			{n: 1 << 30, want: depot.ErrPart, wantParts: 1}, {n: 1, wantParts: 2},
		}},
		{"after SetReady", []call{
			{n: 0, wantParts: 1}, {n: 1, wantParts: 2}, {ready: true, wantParts: 2},
			{n: 1, wantParts: 2}, {n: 2, want: depot.ErrState, wantParts: 2},
			{n: 3, want: depot.ErrPart, wantParts: 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeta(t)
			ctx := Ctx(t)
			MustCreate(t, m, NewTransfer("x", "alice", 100))
			for i, c := range tc.calls {
				if c.ready {
					metaErr(t, fmt.Sprintf("call %d: SetReady", i), m.SetReady(ctx, "x"), c.want)
				} else {
					metaErr(t, fmt.Sprintf("call %d: AddPart(%d)", i, c.n), m.AddPart(ctx, "x", c.n), c.want)
				}
				if got := MustGet(t, m, "x").Parts; got != c.wantParts {
					t.Fatalf("call %d: Parts = %d, want %d", i, got, c.wantParts)
				}
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		metaErr(t, "AddPart(missing)", newMeta(t).AddPart(Ctx(t), "missing", 0), depot.ErrNotFound)
	})
}

func testSetReady(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	up := NewTransfer("up", "alice", 100)
	MustCreate(t, m, up)
	metaErr(t, "SetReady(up)", m.SetReady(ctx, "up"), nil)
	got := MustGet(t, m, "up")
	if got.State != depot.Ready {
		t.Fatalf("after SetReady, State = %q", got.State)
	}
	// Nothing else changes.
	got.State = depot.Uploading
	if !reflect.DeepEqual(got, Normalize(up)) {
		t.Fatalf("SetReady changed more than State: %+v, was %+v", got, Normalize(up))
	}
	metaErr(t, "SetReady(up) again", m.SetReady(ctx, "up"), depot.ErrState)
	ready := NewTransfer("ready", "alice", 100)
	ready.State = depot.Ready
	MustCreate(t, m, ready)
	metaErr(t, "SetReady(ready)", m.SetReady(ctx, "ready"), depot.ErrState)
	metaErr(t, "SetReady(missing)", m.SetReady(ctx, "missing"), depot.ErrNotFound)
}

func testCountDownload(t *testing.T, newMeta func(t *testing.T) depot.Meta) {
	type count struct {
		want     error
		wantUsed int
	}
	upTo := func(limit int) []count {
		var cs []count
		for i := 1; i <= limit; i++ {
			cs = append(cs, count{wantUsed: i})
		}
		return cs
	}
	for _, tc := range []struct {
		name  string
		limit int
		used  int // at creation
		state depot.State
		calls []count
	}{
		{"limit 1", 1, 0, depot.Ready, []count{{wantUsed: 1}, {depot.ErrUsedUp, 1}, {depot.ErrUsedUp, 1}}},
		{"limit 3", 3, 0, depot.Ready, append(upTo(3), count{depot.ErrUsedUp, 3})},
		{"limit 3, one used", 3, 1, depot.Ready, []count{{wantUsed: 2}, {wantUsed: 3}, {depot.ErrUsedUp, 3}}},
		{"unlimited", 0, 0, depot.Ready, upTo(25)},
		{"still uploading", 3, 0, depot.Uploading, []count{{depot.ErrState, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeta(t)
			ctx := Ctx(t)
			tr := NewTransfer("x", "alice", 100)
			tr.Limit, tr.Used, tr.State = tc.limit, tc.used, tc.state
			MustCreate(t, m, tr)
			for i, c := range tc.calls {
				used, err := m.CountDownload(ctx, "x")
				metaErr(t, fmt.Sprintf("call %d: CountDownload", i), err, c.want)
				if c.want == nil && used != c.wantUsed {
					t.Fatalf("call %d: CountDownload = %d, want %d", i, used, c.wantUsed)
				}
				if got := MustGet(t, m, "x").Used; got != c.wantUsed {
					t.Fatalf("call %d: Used = %d, want %d", i, got, c.wantUsed)
				}
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := newMeta(t).CountDownload(Ctx(t), "missing")
		metaErr(t, "CountDownload(missing)", err, depot.ErrNotFound)
	})
}

func testDelete(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	MustCreate(t, m, NewTransfer("a", "alice", 100))
	MustCreate(t, m, NewTransfer("b", "alice", 100))
	metaErr(t, "Delete(a)", m.Delete(ctx, "a"), nil)
	_, err := m.Get(ctx, "a")
	metaErr(t, "Get(a) after Delete", err, depot.ErrNotFound)
	metaErr(t, "Delete(a) again", m.Delete(ctx, "a"), nil)
	metaErr(t, "Delete(missing)", m.Delete(ctx, "missing"), nil)
	MustGet(t, m, "b")
	// The id is free again.
	again := NewTransfer("a", "bob", 7)
	MustCreate(t, m, again)
	if got := MustGet(t, m, "a"); !reflect.DeepEqual(got, Normalize(again)) {
		t.Fatalf("a created again = %+v, want %+v", got, Normalize(again))
	}
}

func list(t *testing.T, m depot.Meta) []depot.Transfer {
	t.Helper()
	var got []depot.Transfer
	if err := m.List(Ctx(t), func(tr depot.Transfer) error {
		got = append(got, Normalize(tr))
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.SortFunc(got, func(a, b depot.Transfer) int {
		if a.ID < b.ID {
			return -1
		} else if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return got
}

func testMetaList(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	if got := list(t, m); len(got) != 0 {
		t.Fatalf("List of an empty store: %+v", got)
	}
	var want []depot.Transfer
	for i := range 5 {
		tr := NewTransfer(fmt.Sprintf("t%d", i), fmt.Sprintf("owner%d", i%2), int64(i*10))
		MustCreate(t, m, tr)
		want = append(want, Normalize(tr))
	}
	// List shows the records as they are now.
	metaErr(t, "AddPart", m.AddPart(ctx, "t1", 0), nil)
	want[1].Parts = 1
	metaErr(t, "SetReady", m.SetReady(ctx, "t2"), nil)
	want[2].State = depot.Ready
	if _, err := m.CountDownload(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	want[2].Used = 1
	metaErr(t, "Delete", m.Delete(ctx, "t3"), nil)
	want = slices.Delete(want, 3, 4)
	if got := list(t, m); !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v\nwant %+v", got, want)
	}
	// An error from fn stops List and comes back from it.
	stop := errors.New("stop")
	calls := 0
	err := m.List(ctx, func(depot.Transfer) error { calls++; return stop })
	metaErr(t, "List with a failing fn", err, stop)
	if calls != 1 {
		t.Fatalf("List went on after fn failed: %d calls", calls)
	}
}

// run calls f(i) for i in [0, n) at once and waits for all.
func run(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentCount(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	tr := NewTransfer("x", "alice", 100)
	tr.Limit, tr.State = 10, depot.Ready
	MustCreate(t, m, tr)
	var (
		mu    sync.Mutex
		used  []int
		errs  []error
		other []error
	)
	run(50, func(int) {
		n, err := m.CountDownload(ctx, "x")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			used = append(used, n)
		case errors.Is(err, depot.ErrUsedUp):
			errs = append(errs, err)
		default:
			other = append(other, err)
		}
	})
	if len(other) > 0 {
		t.Fatalf("CountDownload failed: %v", other)
	}
	slices.Sort(used)
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(used, want) || len(errs) != 40 {
		t.Fatalf("50 concurrent downloads of 10: counted %v, %d used up", used, len(errs))
	}
	if got := MustGet(t, m, "x").Used; got != 10 {
		t.Fatalf("Used = %d, want 10", got)
	}
}

// ConcurrentCreate creates n transfers of size bytes at once with quota q,
// the owner of transfer i from owner(i), and returns how many were admitted;
// anything but nil and ErrQuota fails the test.
func ConcurrentCreate(t testing.TB, m depot.Meta, prefix string, n int, size int64, owner func(i int) string, q depot.Quota) int {
	t.Helper()
	ctx := Ctx(t)
	var mu sync.Mutex
	admitted := 0
	var other []error
	run(n, func(i int) {
		err := m.Create(ctx, NewTransfer(fmt.Sprintf("%s%02d", prefix, i), owner(i), size), q)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			admitted++
		} else if !errors.Is(err, depot.ErrQuota) {
			other = append(other, err)
		}
	})
	if len(other) > 0 {
		t.Fatalf("Create failed: %v", other)
	}
	return admitted
}

func testConcurrentCreate(t *testing.T, newMeta func(t *testing.T) depot.Meta) {
	alice := func(int) string { return "alice" }
	t.Run("total", func(t *testing.T) {
		m := newMeta(t)
		if got := ConcurrentCreate(t, m, "t", 20, 100, alice, depot.Quota{Total: 700}); got != 7 {
			t.Fatalf("20 concurrent creates of 100 bytes under a 700-byte quota: %d admitted, want 7", got)
		}
		if got := len(list(t, m)); got != 7 {
			t.Fatalf("%d records stored, want 7", got)
		}
	})
	t.Run("per owner", func(t *testing.T) {
		m := newMeta(t)
		two := func(i int) string { return []string{"alice", "bob"}[i%2] }
		if got := ConcurrentCreate(t, m, "t", 20, 100, two, depot.Quota{PerOwner: 300}); got != 6 {
			t.Fatalf("20 concurrent creates of 100 bytes by two owners with 300 each: %d admitted, want 6", got)
		}
		owners := map[string]int{}
		for _, tr := range list(t, m) {
			owners[tr.Owner]++
		}
		if owners["alice"] != 3 || owners["bob"] != 3 {
			t.Fatalf("records per owner: %v, want 3 each", owners)
		}
	})
	t.Run("same id", func(t *testing.T) {
		m := newMeta(t)
		ctx := Ctx(t)
		var mu sync.Mutex
		created, exists := 0, 0
		run(20, func(int) {
			err := m.Create(ctx, NewTransfer("x", "alice", 100), depot.Quota{})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				created++
			} else if errors.Is(err, depot.ErrExists) {
				exists++
			}
		})
		if created != 1 || exists != 19 {
			t.Fatalf("20 concurrent creates of one id: %d created, %d ErrExists", created, exists)
		}
		// Counted once: 100 bytes of 200 are free.
		metaErr(t, "Create(y)", m.Create(ctx, NewTransfer("y", "alice", 100), depot.Quota{Total: 200}), nil)
		metaErr(t, "Create(z)", m.Create(ctx, NewTransfer("z", "alice", 1), depot.Quota{Total: 200}), depot.ErrQuota)
	})
}

func testConcurrentDelete(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	q := depot.Quota{Total: 300, PerOwner: 200}
	for _, id := range []string{"a", "b", "c"} {
		metaErr(t, "Create("+id+")", m.Create(ctx, NewTransfer(id, "alice", 100), depot.Quota{}), nil)
	}
	var mu sync.Mutex
	var errs []error
	run(20, func(int) {
		if err := m.Delete(ctx, "a"); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		t.Fatalf("concurrent Delete: %v", errs)
	}
	// Freed exactly once: alice has 200 of 200 and 100 of the 300 total is
	// free, no more.
	metaErr(t, "Create(alice)", m.Create(ctx, NewTransfer("d", "alice", 1), q), depot.ErrQuota)
	metaErr(t, "Create(bob)", m.Create(ctx, NewTransfer("e", "bob", 100), q), nil)
	metaErr(t, "Create(carol)", m.Create(ctx, NewTransfer("f", "carol", 1), q), depot.ErrQuota)
}

func testConcurrentAddPart(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	MustCreate(t, m, NewTransfer("x", "alice", 100))
	// Parts 0..9 each recorded by five racing calls, in order per part.
	var mu sync.Mutex
	var errs []error
	for n := range 10 {
		run(5, func(int) {
			if err := m.AddPart(ctx, "x", n); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	if len(errs) > 0 {
		t.Fatalf("AddPart: %v", errs)
	}
	if got := MustGet(t, m, "x").Parts; got != 10 {
		t.Fatalf("Parts = %d, want 10", got)
	}
}

func testSetGone(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	q := depot.Quota{PerOwner: 200}
	up, ready := NewTransfer("up", "alice", 100), NewTransfer("ready", "alice", 100)
	MustCreate(t, m, up)
	MustCreate(t, m, ready)
	metaErr(t, "SetReady(ready)", m.SetReady(ctx, "ready"), nil)
	metaErr(t, "CountDownload(ready)", func() error { _, err := m.CountDownload(ctx, "ready"); return err }(), nil)
	metaErr(t, "Create(full)", m.Create(ctx, NewTransfer("x", "alice", 1), q), depot.ErrQuota)
	metaErr(t, "SetGone(missing)", m.SetGone(ctx, "missing"), depot.ErrNotFound)
	for _, id := range []string{"up", "ready"} {
		metaErr(t, "SetGone("+id+")", m.SetGone(ctx, id), nil)
		metaErr(t, "SetGone("+id+") again", m.SetGone(ctx, id), nil)
	}
	// Kept, with every field but the state.
	g := MustGet(t, m, "ready")
	want := Normalize(ready)
	want.State, want.Used = depot.Gone, 1
	if g := Normalize(g); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("Get after SetGone = %+v, want %+v", g, want)
	}
	metaErr(t, "AddPart(gone)", m.AddPart(ctx, "up", 0), depot.ErrState)
	metaErr(t, "SetReady(gone)", m.SetReady(ctx, "up"), depot.ErrState)
	metaErr(t, "CountDownload(gone)", func() error { _, err := m.CountDownload(ctx, "ready"); return err }(), depot.ErrState)
	// Their bytes are free: alice may store 200 again, and not 201.
	metaErr(t, "Create(y)", m.Create(ctx, NewTransfer("y", "alice", 200), q), nil)
	metaErr(t, "Create(z)", m.Create(ctx, NewTransfer("z", "alice", 1), q), depot.ErrQuota)
	// Deleting a gone record frees nothing more.
	metaErr(t, "Delete(up)", m.Delete(ctx, "up"), nil)
	metaErr(t, "Delete(ready)", m.Delete(ctx, "ready"), nil)
	metaErr(t, "Create(z) after deleting gone ones", m.Create(ctx, NewTransfer("z", "alice", 1), q), depot.ErrQuota)
	if _, err := m.Get(ctx, "up"); !errors.Is(err, depot.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func testConcurrentGone(t *testing.T, m depot.Meta) {
	ctx := Ctx(t)
	q := depot.Quota{Total: 300}
	for _, id := range []string{"a", "b", "c"} {
		MustCreate(t, m, NewTransfer(id, "alice", 100))
	}
	var mu sync.Mutex
	var errs []error
	run(30, func(i int) {
		var err error
		if i%2 == 0 {
			err = m.SetGone(ctx, "a")
		} else {
			err = m.Delete(ctx, "a")
		}
		// SetGone may come after a Delete: then there is nothing to mark.
		if err != nil && !(i%2 == 0 && errors.Is(err, depot.ErrNotFound)) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		t.Fatalf("concurrent SetGone and Delete: %v", errs)
	}
	// Freed exactly once: 100 of the 300 are free, no more.
	metaErr(t, "Create(d)", m.Create(ctx, NewTransfer("d", "bob", 100), q), nil)
	metaErr(t, "Create(e)", m.Create(ctx, NewTransfer("e", "bob", 1), q), depot.ErrQuota)
}
