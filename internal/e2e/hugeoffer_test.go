package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// hugeOffer plays a malicious sender on a real connection: it offers one
// file of 2^32 - 2 chunks of 1 KiB (4.4 TB), the most a manifest may
// claim, then sends chunks far apart from each other in two rounds of
// count, and after each waits until the page has committed them.
type hugeOffer struct {
	count    int
	accepted chan struct{}    // closed when the page accepted
	acked    [2]chan struct{} // closed when all but the last batch of a round's credit came back
	next     chan struct{}    // closed by the test to start round two
}

// Chunks go at indices 1, 1+stride, …: scattered, yet within the first
// 64 MiB of the file, where the test's origin-private file system has room
// to write them.
const hugeStride = 13

func (h *hugeOffer) run(ctx context.Context, c transfer.Conn) error {
	const chunk = proto.MinChunkSize
	const size = (1<<32 - 2) * chunk
	send := func(m proto.Control) error {
		b, err := proto.MarshalControl(m)
		if err != nil {
			return err
		}
		return c.Send(b)
	}
	var credit, acked int
	// recv handles one message from the page; it returns the control
	// message if it was one.
	recv := func() (proto.Control, error) {
		b, err := c.Recv()
		if err != nil {
			return nil, err
		}
		switch {
		case len(b) > 0 && b[0] == proto.FrameAck:
			a, err := proto.ParseAck(b)
			if err != nil {
				return nil, err
			}
			credit += int(a.Credit)
			acked += int(a.Credit)
			return nil, nil
		case len(b) > 0 && b[0] == proto.FrameControl:
			m, err := proto.ParseControl(b)
			if err != nil {
				return nil, err
			}
			switch m := m.(type) {
			case *proto.Cancel:
				return nil, transfer.ErrCanceled
			case *proto.Error:
				return nil, fmt.Errorf("the page sent error %q", m.Code)
			}
			return m, nil
		}
		return nil, fmt.Errorf("unexpected frame % x", b[:min(len(b), 8)])
	}
	if err := send(&proto.Manifest{Version: proto.Version, Agent: "evil/1", ChunkSize: chunk, TotalSize: size,
		Files: []proto.File{{Path: "huge.bin", Size: size}}}); err != nil {
		return err
	}
	m, err := recv()
	if err != nil {
		return err
	}
	acc, ok := m.(*proto.Accept)
	if !ok {
		return fmt.Errorf("got %v, want accept", m)
	}
	close(h.accepted)
	credit = acc.Window
	batch := max(1, acc.Window/8) // the page returns credit in batches
	data := make([]byte, chunk)
	rand.Read(data)
	hash := proto.ChunkHash(data)
	for round := range 2 {
		if round == 1 {
			select {
			case <-h.next:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for i := round * h.count; i < (round+1)*h.count; i++ {
			for credit == 0 {
				if _, err := recv(); err != nil {
					return err
				}
			}
			ch := proto.Chunk{Index: uint32(1 + i*hugeStride), Hash: hash, Data: data}
			if err := c.Send(ch.Marshal()); err != nil {
				return err
			}
			credit--
		}
		for acked < (round+1)*h.count-batch {
			if _, err := recv(); err != nil {
				return err
			}
		}
		close(h.acked[round])
	}
	for {
		if _, err := recv(); err != nil {
			return err
		}
	}
}

// rendererRSS is the resident memory of b's renderer processes (the page
// and its transfer worker, array buffers included), in bytes.
func rendererRSS(t testing.TB, b context.Context) int64 {
	t.Helper()
	root := chromedp.FromContext(b).Browser.Process().Pid
	parent := map[int]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
		if len(f) > 1 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
	}
	var total int64
	for pid := range parent {
		under := false
		for p := parent[pid]; p > 1 && !under; p = parent[p] {
			under = p == root
		}
		if !under {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !bytes.Contains(cmd, []byte("--type=renderer")) {
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				total += kb << 10
			}
		}
	}
	if total == 0 {
		t.Fatal("no renderer process found")
	}
	return total
}

// jsMemory is what the page and its dedicated workers hold after a
// garbage collection: JavaScript heaps, Blink's heaps and array buffers.
// workers caches the attached worker contexts.
func jsMemory(t testing.TB, b context.Context, workers map[string]context.Context) int64 {
	t.Helper()
	ts, err := chromedp.Targets(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range ts {
		if _, ok := workers[string(ti.TargetID)]; ti.Type == "worker" && !ok {
			workers[string(ti.TargetID)], _ = chromedp.NewContext(b, chromedp.WithTargetID(ti.TargetID))
		}
	}
	if len(workers) == 0 {
		t.Fatal("no worker target")
	}
	var total float64
	for _, c := range append([]context.Context{b}, slices.Collect(maps.Values(workers))...) {
		if _, err := chromedp.Call(c, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
			t.Fatalf("collect garbage: %v", err)
		}
		u, err := chromedp.Call(c, runtime.GetHeapUsage, cdp.Empty{})
		if err != nil {
			t.Fatalf("heap usage: %v", err)
		}
		total += u.UsedSize + u.EmbedderHeapUsedSize + u.BackingStorageSize
	}
	return int64(total)
}

// A sender may offer one 4.4 TB file of 1 KiB chunks (2^32 - 2 of them)
// and send a few thousand far apart: the receive page shows the size
// before anything is accepted, its memory follows what arrived, not what
// was offered (it used to allocate 32 bytes per offered chunk, 128 GiB,
// and stop), and the person can cancel cleanly.
func TestHugeSparseOfferBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, base := startServer(t, nil)
	src, _ := randomFile(t, t.TempDir(), "decoy.bin", 1)
	server, _ := url.Parse(base)
	links := make(chan string, 1)
	cfg := &peer.Config{Server: server, Events: peer.Events{Link: func(l string, _ time.Time) { links <- l }}}
	evil := &hugeOffer{count: 2500, accepted: make(chan struct{}), acked: [2]chan struct{}{make(chan struct{}), make(chan struct{})}, next: make(chan struct{})}
	sent := make(chan error, 1)
	go func() {
		_, err := peer.Send(ctx, cfg, []transfer.SourceFile{{Path: "decoy.bin", Local: src, Size: 1, Mtime: time.Now()}},
			peer.SendOptions{Engine: evil.run, ReconnectFor: time.Second})
		sent <- err
	}()
	var link string
	select {
	case link = <-links:
	case err := <-sent:
		t.Fatalf("sender: %v", err)
	case <-ctx.Done():
		t.Fatal("no link from the sender")
	}
	rb := newBrowser(t, ctx, "receiver")
	onNewDocument(t, rb, stubSavePickerOPFS)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	page, err := chromedp.Run(rb, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ReplaceAll(page, "\u00a0", " "), "4.4 TB") {
		t.Errorf("the review page does not show the offer's size (4.4 TB):\n%s", page)
	}
	before := rendererRSS(t, rb)
	workers := map[string]context.Context{}
	heapBefore := jsMemory(t, rb, workers)
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	// Bounded waits: a page that cannot take the offer never returns the
	// credit for the chunks.
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case err := <-sent:
			t.Fatalf("sender stopped before %s: %v\nreceiver: %s", what, err, diag(rb))
		case <-time.After(90 * time.Second):
			t.Fatalf("%s did not happen within 90 s\nreceiver: %s", what, diag(rb))
		}
	}
	wait(evil.accepted, "the page accepted")
	wait(evil.acked[0], "the page committed the first scattered chunks")
	// The first round brings the page's memory for moving chunks (data
	// channel buffers, messages to the worker, up to a window of them in
	// flight: about 15 KiB a chunk here) to its high-water mark; the
	// second round, as large, shows what each arrived chunk keeps.
	mid := rendererRSS(t, rb)
	close(evil.next)
	wait(evil.acked[1], "the page committed the second scattered chunks")
	after := rendererRSS(t, rb)
	heapAfter := jsMemory(t, rb, workers)
	t.Logf("renderer memory: +%d MiB after %d scattered chunks of a 4.4 TB offer, +%d MiB after %d more; JavaScript memory of page and worker +%d KiB",
		(mid-before)>>20, evil.count, (after-mid)>>20, evil.count, (heapAfter-heapBefore)>>10)
	if after-before > 128<<20 {
		t.Errorf("renderer memory grew by %d MiB", (after-before)>>20)
	}
	if heapAfter-heapBefore > 16<<20 {
		t.Errorf("the page's and worker's JavaScript memory grew by %d MiB", (heapAfter-heapBefore)>>20)
	}
	if st, _ := waitState(rb, "transferring"); st != "transferring" {
		t.Fatalf("receiver state: %s", diag(rb))
	}
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("cancel"))); err != nil {
		t.Fatal(err)
	}
	st, err := waitState(rb, "canceled", "error", "done")
	if err != nil || st != "canceled" || !strings.Contains(text(rb, "error"), "You canceled") {
		t.Fatalf("state %q (%v), message %q; want canceled", st, err, text(rb, "error"))
	}
	select {
	case err := <-sent:
		if !errors.Is(err, transfer.ErrCanceled) {
			t.Fatalf("sender: %v, want canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("the sender did not hear of the cancel")
	}
}
