package boltmeta_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/depot/boltmeta"
	"github.com/ferrydev/ferry/internal/depot/depottest"
)

func open(t *testing.T, path string) *boltmeta.Meta {
	t.Helper()
	m, err := boltmeta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMeta(t *testing.T) {
	depottest.TestMeta(t, func(t *testing.T) depot.Meta {
		m := open(t, filepath.Join(t.TempDir(), "meta.db"))
		// Whatever a subtest did, the counters agree with the records.
		t.Cleanup(func() {
			if err := m.Check(); err != nil {
				t.Error(err)
			}
		})
		return m
	})
}

// TestReopen: records, counters and quotas are the same after Close and Open.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	ctx := depottest.Ctx(t)
	m, err := boltmeta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a := depottest.NewTransfer("a", "alice", 100)
	depottest.MustCreate(t, m, a)
	if err := m.AddPart(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	a.Parts = 1
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = open(t, path)
	if got := depottest.MustGet(t, m, "a"); !reflect.DeepEqual(got, depottest.Normalize(a)) {
		t.Fatalf("after reopening: %+v, want %+v", got, depottest.Normalize(a))
	}
	if err := m.Create(ctx, depottest.NewTransfer("b", "alice", 1), depot.Quota{PerOwner: 100}); !errors.Is(err, depot.ErrQuota) {
		t.Fatalf("quota after reopening: %v, want ErrQuota", err)
	}
}

// TestLocked: a second Open of a file in use fails with ErrLocked once its
// timeout has passed, rather than waiting for ever or opening it twice;
// after Close it opens.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	m, err := boltmeta.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = boltmeta.OpenWith(path, boltmeta.Options{LockTimeout: 300 * time.Millisecond})
	took := time.Since(start)
	if !errors.Is(err, boltmeta.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v, want ErrLocked naming the file", err)
	}
	if took < 200*time.Millisecond || took > 5*time.Second {
		t.Fatalf("second Open gave up after %v, want about 300ms", took)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path)
}

// The kill -9 test runs this test binary again as a child that applies
// killScript to a database file and prints "op N" after op N returned;
// the parent kills it with SIGKILL mid-way.
const (
	envChild = "FERRY_BOLTMETA_KILL_CHILD" // the database file
	envStart = "FERRY_BOLTMETA_KILL_START" // the first op to apply
)

type killOp struct {
	kind byte // 'c' create, 'p' AddPart(n), 'r' SetReady, 'u' CountDownload, 'd' Delete
	id   string
	n    int
}

var killEpoch = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func killTransfer(id string, i int) depot.Transfer {
	return depot.Transfer{
		ID: id, Owner: fmt.Sprintf("owner%d", i%3),
		ReadHash: []byte("r" + id), WriteHash: []byte("w" + id),
		Size: int64(1000 + i), Created: killEpoch, Expires: killEpoch.Add(time.Hour),
		Limit: 3, State: depot.Uploading, Upload: "u" + id,
	}
}

// killScript is the fixed sequence of operations of the child.
func killScript(n int) []killOp {
	var ops []killOp
	for i := 0; len(ops) < n; i++ {
		id := fmt.Sprintf("t%05d", i)
		ops = append(ops, killOp{kind: 'c', id: id}, killOp{kind: 'p', id: id, n: 0})
		if i%2 == 0 {
			ops = append(ops, killOp{kind: 'p', id: id, n: 1})
		}
		if i%5 == 0 {
			ops = append(ops, killOp{kind: 'r', id: id}, killOp{kind: 'u', id: id})
		}
		if i%4 == 3 {
			ops = append(ops, killOp{kind: 'd', id: fmt.Sprintf("t%05d", i-1)})
		}
	}
	return ops[:n]
}

func index(id string) int {
	i, _ := strconv.Atoi(id[1:])
	return i
}

// model applies ops to a map, the expected state.
func model(ops []killOp) map[string]depot.Transfer {
	m := map[string]depot.Transfer{}
	for _, o := range ops {
		t := m[o.id]
		switch o.kind {
		case 'c':
			t = depottest.Normalize(killTransfer(o.id, index(o.id)))
		case 'p':
			t.Parts++
		case 'r':
			t.State = depot.Ready
		case 'u':
			t.Used++
		case 'd':
			delete(m, o.id)
			continue
		}
		m[o.id] = t
	}
	return m
}

const killOps = 100000 // more than the child gets through before the kill

func killChild(path string) {
	start, _ := strconv.Atoi(os.Getenv(envStart))
	m, err := boltmeta.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background() // the parent bounds the child's life
	for k, o := range killScript(killOps)[start:] {
		switch o.kind {
		case 'c':
			err = m.Create(ctx, killTransfer(o.id, index(o.id)), depot.Quota{})
		case 'p':
			err = m.AddPart(ctx, o.id, o.n)
		case 'r':
			err = m.SetReady(ctx, o.id)
		case 'u':
			_, err = m.CountDownload(ctx, o.id)
		case 'd':
			err = m.Delete(ctx, o.id)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "op %d %c %s: %v\n", start+k, o.kind, o.id, err)
			os.Exit(2)
		}
		// Unbuffered: once this line is written, the op is acknowledged.
		fmt.Printf("op %d\n", start+k)
	}
	os.Exit(3)
}

// TestKill9 kills a process writing to the database with SIGKILL, three
// times at random points, and reopens the file each time: it is consistent
// (bbolt's check, counters matching records), holds every acknowledged
// operation, and at most the one that was under way besides. While the
// child has the file open, Open here fails with ErrLocked: the second
// process gets a clear error, not a hang.
func TestKill9(t *testing.T) {
	if path := os.Getenv(envChild); path != "" {
		killChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "meta.db")
	script := killScript(killOps)
	done := 0 // ops in the file
	for round := range 3 {
		acked := runAndKill(t, path, done, 40+rand.IntN(120), round == 0)
		m, err := boltmeta.Open(path)
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		if err := m.Check(); err != nil {
			t.Fatalf("round %d: after kill -9: %v", round, err)
		}
		got := map[string]depot.Transfer{}
		if err := m.List(depottest.Ctx(t), func(tr depot.Transfer) error {
			got[tr.ID] = depottest.Normalize(tr)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		switch {
		case reflect.DeepEqual(got, model(script[:acked+1])):
			done = acked + 1
		case reflect.DeepEqual(got, model(script[:acked+2])):
			done = acked + 2 // the op under way at the kill had committed
		default:
			t.Fatalf("round %d: after %d acknowledged ops the file holds %d records that match neither %d nor %d ops:\n%v\nwant\n%v",
				round, acked+1, len(got), acked+1, acked+2, keys(got), keys(model(script[:acked+1])))
		}
		t.Logf("round %d: killed after %d acknowledged ops, %d in the file, %d records", round, acked+1, done, len(got))
	}
}

func keys(m map[string]depot.Transfer) []string {
	var ks []string
	for k, t := range m {
		ks = append(ks, fmt.Sprintf("%s:%d/%s/%d", k, t.Parts, t.State, t.Used))
	}
	slices.Sort(ks)
	return ks
}

// runAndKill runs the child from op start, kills it once it acknowledged
// `after` ops, and returns the last op it acknowledged.
func runAndKill(t *testing.T, path string, start, after int, tryLock bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+path, envStart+"="+strconv.Itoa(start))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var killed, timedOut atomic.Bool
	kill := func() {
		if killed.CompareAndSwap(false, true) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	// Bounds the whole run: the child is killed by pid at the latest here.
	timer := time.AfterFunc(60*time.Second, func() { timedOut.Store(true); kill() })
	defer timer.Stop()
	last := start - 1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "op "))
		if err != nil {
			continue
		}
		if n != last+1 {
			t.Errorf("child acknowledged op %d after %d", n, last)
		}
		last = n
		if last-start+1 == after {
			if tryLock {
				checkLockedByChild(t, path)
			}
			kill()
		}
	}
	err = cmd.Wait()
	if timedOut.Load() {
		t.Fatalf("the child acknowledged %d ops in 60 s, not %d\n%s", last-start+1, after, stderr.String())
	}
	var ee *exec.ExitError
	if !killed.Load() || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended before the kill: %v\n%s", err, stderr.String())
	}
	return last
}

func checkLockedByChild(t *testing.T, path string) {
	t.Helper()
	start := time.Now()
	m, err := boltmeta.OpenWith(path, boltmeta.Options{LockTimeout: 300 * time.Millisecond})
	if err == nil {
		m.Close()
		t.Fatal("opened a file another process has open")
	}
	if !errors.Is(err, boltmeta.ErrLocked) {
		t.Fatalf("Open of a file another process has open: %v, want ErrLocked", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Open of a locked file gave up after %v", took)
	}
}
