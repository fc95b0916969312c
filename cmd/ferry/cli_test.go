package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/servertest"
	"github.com/ferrydev/ferry/internal/testenv"
	"github.com/ferrydev/ferry/internal/transfer"
)

// ferryBin is the ferry binary built once for the CLI tests.
var ferryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	if out, err := exec.Command("go", "build", "-o", ferryBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building ferry: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startServer(t *testing.T) *server.Server {
	return servertest.Start(t, servertest.Config(), server.Options{})
}

// writeFile writes size pseudo-random bytes (fast, not secret) to path.
func writeFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{byte(size), 1, 2, 3})
	if _, err := io.CopyN(f, r, size); err != nil {
		t.Fatal(err)
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

type jsonEvent struct {
	Event       string   `json:"event"`
	Link        string   `json:"link"`
	Path        string   `json:"path"`
	Done        int64    `json:"done"`
	Resumed     int64    `json:"resumed"`
	Total       int64    `json:"total"`
	Bytes       int64    `json:"bytes"`
	Sent        int64    `json:"sent"`
	Generations int      `json:"generations"`
	Message     string   `json:"message"`
	Roots       []string `json:"roots"`
	FilesDone   int      `json:"filesDone"`
}

// proc is a ferry process whose --json events are read as they come.
type proc struct {
	cmd    *exec.Cmd
	events chan jsonEvent
	stderr *strings.Builder
}

func startFerry(t *testing.T, ctx context.Context, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, events: make(chan jsonEvent, 1024), stderr: &strings.Builder{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // by pid; a no-op once it exited
		cmd.Wait()
	})
	go func() {
		defer close(p.events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e jsonEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.events <- e
			}
		}
	}()
	return p
}

// next returns the next event of one of the kinds, failing on "error".
func (p *proc) next(t *testing.T, ctx context.Context, kinds ...string) jsonEvent {
	t.Helper()
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				t.Fatalf("ferry %v exited before %v; stderr:\n%s", p.cmd.Args[1], kinds, p.stderr)
			}
			if e.Event == "error" {
				t.Fatalf("ferry %v failed: %s; stderr:\n%s", p.cmd.Args[1], e.Message, p.stderr)
			}
			for _, k := range kinds {
				if e.Event == k {
					return e
				}
			}
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %v from ferry %v; stderr:\n%s", kinds, p.cmd.Args[1], p.stderr)
		}
	}
}

func TestSendReceiveCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServer(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "album", "2024"), 0o755)
	writeFile(t, filepath.Join(src, "album", "2024", "a.jpg"), 3<<20)
	writeFile(t, filepath.Join(src, "album", "b.txt"), 10)
	writeFile(t, filepath.Join(src, "single.bin"), 1<<20+3)
	out := t.TempDir()
	send := startFerry(t, ctx, nil, "send", "--json", "--server", srv.URL().String(),
		filepath.Join(src, "album"), filepath.Join(src, "single.bin"))
	link := send.next(t, ctx, "link").Link
	recv := startFerry(t, ctx, []string{"FERRY_LINK=" + link}, "receive", "--json", "--out", out)
	rdone := recv.next(t, ctx, "done")
	sdone := send.next(t, ctx, "done")
	for _, f := range []string{"album/2024/a.jpg", "album/b.txt", "single.bin"} {
		if sha(t, filepath.Join(src, f)) != sha(t, filepath.Join(out, f)) {
			t.Fatalf("%s differs", f)
		}
	}
	if rdone.Path != "direct" || sdone.Path != "direct" || len(rdone.Roots) != 3 || rdone.Roots[0] != sdone.Roots[0] {
		t.Fatalf("done events: receiver %+v, sender %+v", rdone, sdone)
	}
	if err := recv.cmd.Wait(); err != nil {
		t.Fatalf("receiver exit: %v\n%s", err, recv.stderr)
	}

	// The same link again, into the same folder: nothing to resume, the
	// ticket is spent, the files are there: a clear error, nothing touched.
	again := exec.CommandContext(ctx, ferryBin, "receive", "--out", out)
	again.Env = append(os.Environ(), "FERRY_LINK="+link)
	msg, err := again.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "already used") {
		t.Fatalf("second receive: %v\n%s", err, msg)
	}
}

func TestReceiveBadLinks(t *testing.T) {
	for _, c := range []struct{ link, want string }{
		{"http://localhost:1/r#AAECAwQFBgcI.AAECAwQFBgcICQoLDA", "incomplete"},
		{"http://localhost:1/r#garbage", "damaged"},
		{"ftp://x/y", "not a ferry link"},
	} {
		cmd := exec.Command(ferryBin, "receive", "--out", t.TempDir())
		cmd.Env = append(os.Environ(), "FERRY_LINK="+c.link)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: %v %s", c.link, err, out)
		}
	}
}

// TestReceiverKilledResumes kills the receiver (SIGKILL) at about half of a
// 500 MiB transfer; running the same command again must finish the file
// from the verified chunks it recorded. The sender is paused (SIGSTOP)
// from the moment the receiver reports half until the kill, so that the
// kill lands mid-transfer however fast this machine moves the rest.
func TestReceiverKilledResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv := startServer(t)
	const size = 500 << 20
	src := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, size)
	out := t.TempDir()
	send := startFerry(t, ctx, nil, "send", "--json", "--server", srv.URL().String(), src)
	link := send.next(t, ctx, "link").Link
	env := []string{"FERRY_LINK=" + link}

	recv := startFerry(t, ctx, env, "receive", "--json", "--out", out)
	for {
		e := recv.next(t, ctx, "progress", "done")
		if e.Event == "done" {
			t.Fatal("the transfer finished before the receiver could be killed")
		}
		if e.Done >= size/2 {
			break
		}
	}
	if err := send.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := recv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	recv.cmd.Wait()
	if err := send.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, progress := transfer.PartNames("big.bin"); !exists(filepath.Join(out, progress)) {
		t.Fatal("no progress log after the kill")
	}
	matches, _ := filepath.Glob(filepath.Join(out, peer.StateFile("*")))
	if len(matches) != 1 {
		t.Fatalf("resume state files: %v", matches)
	}

	recv2 := startFerry(t, ctx, env, "receive", "--json", "--out", out)
	rdone := recv2.next(t, ctx, "done")
	sdone := send.next(t, ctx, "done")
	if sha(t, src) != sha(t, filepath.Join(out, "big.bin")) {
		t.Fatal("resumed file differs")
	}
	extra := sdone.Sent - size
	t.Logf("sender put %d MiB on the wire for a %d MiB file (%.0f%% extra), %d connections",
		sdone.Sent>>20, size>>20, 100*float64(extra)/size, sdone.Generations)
	if extra >= size*6/10 {
		t.Fatalf("resending %d bytes (>= 60%% of the file): the resume did not use verified chunks", extra)
	}
	if sdone.Generations < 2 || rdone.Bytes != size {
		t.Fatalf("sender done %+v, receiver done %+v", sdone, rdone)
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".ferry-*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestReceiverKilledMultiFileResumes kills the receiver (SIGKILL) in the
// middle of a folder of 50 files, with some files finished and one in
// progress; running the same command again must recognise the files the
// first run finished (not refuse them as someone else's), fetch only what
// was not verified, and leave nothing of its own behind. The relay's
// bandwidth cap keeps the transfer slow enough to kill it half way, and the
// sender is paused for the kill as in TestReceiverKilledResumes.
func TestReceiverKilledMultiFileResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := servertest.Config()
	cfg.TURN.AllowPrivate, cfg.TURN.Bandwidth = true, 8<<20
	srv := servertest.Start(t, cfg, server.Options{})
	top := t.TempDir()
	var total int64
	var names []string
	for i := range 50 {
		size := int64(i*37<<10) % (1 << 20) // mixed sizes, one empty
		if i%12 == 7 {
			size = 6<<20 + int64(i)
		}
		name := filepath.Join("tree", fmt.Sprintf("d%02d", i/10), fmt.Sprintf("f%04d", i))
		if err := os.MkdirAll(filepath.Join(top, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(top, name), size)
		names, total = append(names, name), total+size
	}
	out := t.TempDir()
	send := startFerry(t, ctx, nil, "send", "--json", "--server", srv.URL().String(), filepath.Join(top, "tree"))
	link := send.next(t, ctx, "link").Link
	env := []string{"FERRY_LINK=" + link}

	recv := startFerry(t, ctx, env, "receive", "--json", "--relay-only", "--out", out)
	for {
		e := recv.next(t, ctx, "progress", "done")
		if e.Event == "done" || e.FilesDone == len(names) {
			t.Fatal("the transfer finished before the receiver could be killed")
		}
		if e.Done >= total/2 && e.FilesDone >= 10 {
			break
		}
	}
	if err := send.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := recv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	recv.cmd.Wait()
	if err := send.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	finished := 0
	for _, name := range names {
		if exists(filepath.Join(out, name)) {
			finished++
		}
	}
	if finished < 10 || finished == len(names) {
		t.Fatalf("%d of %d files finished before the kill", finished, len(names))
	}

	recv2 := startFerry(t, ctx, env, "receive", "--json", "--relay-only", "--out", out)
	first := recv2.next(t, ctx, "progress")
	rdone := recv2.next(t, ctx, "done")
	sdone := send.next(t, ctx, "done")
	for _, name := range names {
		if sha(t, filepath.Join(top, name)) != sha(t, filepath.Join(out, name)) {
			t.Fatalf("%s differs", name)
		}
	}
	extra := sdone.Sent - total
	t.Logf("%d files finished before the kill; the second run resumed %d of %d bytes; the sender put %d bytes on the wire (%d extra), %d connections",
		finished, first.Resumed, total, sdone.Sent, extra, sdone.Generations)
	if first.Resumed < total/4 {
		t.Fatalf("the second run kept only %d of %d bytes", first.Resumed, total)
	}
	if extra >= total*6/10 {
		t.Fatalf("resending %d bytes (>= 60%% of the transfer): the resume did not use the verified files and chunks", extra)
	}
	if sdone.Generations < 2 || rdone.Bytes != total {
		t.Fatalf("sender done %+v, receiver done %+v", sdone, rdone)
	}
	var left []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".ferry-") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// fullDiskMidway starts a send of a file of size through a relay capped at
// 2 MB/s and a receive of it onto an 8 MB tmpfs, and fills that disk (with
// out/filler) once a megabyte has arrived; it returns when the receiver
// has exited, with the folder, the source, the receiver's environment (the
// link), the still waiting sender and the ended receiver.
func fullDiskMidway(t *testing.T, ctx context.Context, size int64) (out, src string, env []string, send, first *proc) {
	t.Helper()
	out = testenv.Tmpfs(t, "8m")
	cfg := servertest.Config()
	cfg.TURN.AllowPrivate, cfg.TURN.Bandwidth = true, 2<<20
	srv := servertest.Start(t, cfg, server.Options{})
	src = filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, size)
	send = startFerry(t, ctx, nil, "send", "--json", "--server", srv.URL().String(), src)
	link := send.next(t, ctx, "link").Link
	env = []string{"FERRY_LINK=" + link}
	first = startFerry(t, ctx, env, "receive", "--json", "--relay-only", "--out", out)
	for {
		if p := first.next(t, ctx, "progress"); p.Done >= 1<<20 {
			if p.Done >= size {
				t.Fatal("the transfer finished before the disk could be filled")
			}
			break
		}
	}
	f, err := os.Create(filepath.Join(out, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.LimitReader(zeros{}, 16<<20)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v", err)
	}
	f.Close()
	first.cmd.Wait()
	return out, src, env, send, first
}

// TestReceiveDiskFull fills the target file system while the transfer runs
// (an offer that does not fit is refused up front, so something else must
// take the space after that; the relay's bandwidth cap keeps the transfer
// slow enough to do so): the receiver must stop with a clear message and
// keep what it verified; after space is freed, the same command finishes
// the transfer, while the sender waited.
func TestReceiveDiskFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const size = 6 << 20
	out, src, env, send, first := fullDiskMidway(t, ctx, size)
	filler := filepath.Join(out, "filler")
	if msg := first.stderr.String(); !strings.Contains(msg, "not enough disk space") || !strings.Contains(msg, "run the same command again") {
		t.Fatalf("receiving onto a full disk:\n%s", msg)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	recv := startFerry(t, ctx, env, "receive", "--json", "--out", out)
	resumed := recv.next(t, ctx, "progress").Resumed
	recv.next(t, ctx, "done")
	sdone := send.next(t, ctx, "done")
	if sha(t, src) != sha(t, filepath.Join(out, "big.bin")) {
		t.Fatal("file differs after resuming")
	}
	t.Logf("sender sent %d MiB for a %d MiB file over %d connections; %d KiB were kept", sdone.Sent>>20, size>>20, sdone.Generations, resumed>>10)
	// What was written before the disk filled up was kept, and the second
	// connection carried only the rest.
	if resumed < 512<<10 {
		t.Fatalf("only %d bytes kept: verified chunks were not kept", resumed)
	}
	if sdone.Sent > size+(size-resumed) {
		t.Fatalf("sent %d bytes for %d with %d kept: kept chunks were sent again", sdone.Sent, size, resumed)
	}
}

// TestReceiveResumeRefusedKeepsData: continuing an interrupted transfer
// onto a file system that has no room left for the rest is refused, but
// the resume state and what was received stay exactly as they were and
// the sender keeps waiting: after space is freed, the same command
// finishes the transfer from the kept chunks. (It used to decline,
// which ended the sender and removed the resume state.)
func TestReceiveResumeRefusedKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Interrupted by a full disk part of the way in (as in
	// TestReceiveDiskFull); the filler stays.
	const size = 6 << 20
	out, src, env, send, _ := fullDiskMidway(t, ctx, size)
	before := snapshot(t, out)
	part, progress := transfer.PartNames("big.bin")
	if before[part] == "" || before[progress] == "" || len(before) != 4 {
		t.Fatalf("after the disk filled up: %v", before)
	}

	// Running again while the disk is still full: refused before a byte
	// is written, nothing lost, nothing changed.
	again := exec.CommandContext(ctx, ferryBin, "receive", "--out", out)
	again.Env = append(os.Environ(), env...)
	msg, err := again.CombinedOutput()
	if after := snapshot(t, out); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the refused run changed the folder:\nbefore %v\nafter  %v\n%s", before, after, msg)
	}
	if err == nil || !strings.Contains(string(msg), "not enough free space") || !strings.Contains(string(msg), "is kept: free ") ||
		!strings.Contains(string(msg), "more and run the same command again") {
		t.Fatalf("resuming onto a full disk: %v\n%s", err, msg)
	}
	t.Logf("refused: %s", msg)

	// After freeing space, the same command continues where it stopped.
	if err := os.Remove(filepath.Join(out, "filler")); err != nil {
		t.Fatal(err)
	}
	// An offer accepted once is not refused again by a lower --max-size
	// (it would decline and drop the resume state, leaving partial files).
	recv := startFerry(t, ctx, env, "receive", "--json", "--max-size", "1MB", "--out", out)
	resumed := recv.next(t, ctx, "progress").Resumed
	recv.next(t, ctx, "done")
	send.next(t, ctx, "done")
	if sha(t, src) != sha(t, filepath.Join(out, "big.bin")) {
		t.Fatal("file differs after resuming")
	}
	if resumed < 512<<10 {
		t.Fatalf("only %d bytes kept", resumed)
	}
}

// snapshot maps each file in dir to its size, modification time and hash.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fmt.Sprintf("%d %s %s", fi.Size(), fi.ModTime().Format(time.RFC3339Nano), sha(t, filepath.Join(dir, e.Name()))[:12])
	}
	return m
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestReceiveRefusesOversizedOffers: an offer over --max-size, or over the
// free space of the target's file system (a 2 MiB tmpfs), is refused
// before anything is written: a clear message, the sender told it was
// declined, and no files or resume state left behind.
func TestReceiveRefusesOversizedOffers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServer(t)
	src := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, 6<<20)
	small := testenv.Tmpfs(t, "2m")

	for _, tc := range []struct {
		name, out string
		env       []string
		want      string
	}{
		{"max-size", t.TempDir(), []string{"FERRY_MAX_SIZE=1MB"}, "more than --max-size"},
		{"free space", small, nil, "not enough free space"},
	} {
		send := startFerry(t, ctx, nil, "send", "--json", "--server", srv.URL().String(), src)
		link := send.next(t, ctx, "link").Link
		recv := exec.CommandContext(ctx, ferryBin, "receive", "--out", tc.out)
		recv.Env = append(os.Environ(), append(tc.env, "FERRY_LINK="+link)...)
		msg, err := recv.CombinedOutput()
		if err == nil || !strings.Contains(string(msg), tc.want) || !strings.Contains(string(msg), "nothing was received") {
			t.Fatalf("%s: receive: %v\n%s", tc.name, err, msg)
		}
		if err := send.cmd.Wait(); err == nil || !strings.Contains(send.stderr.String(), "declined") {
			t.Fatalf("%s: sender: %v\n%s", tc.name, err, send.stderr)
		}
		if ents, _ := os.ReadDir(tc.out); len(ents) != 0 {
			t.Fatalf("%s: left behind in %s: %v", tc.name, tc.out, ents)
		}
	}
}

// openPTY returns a new pseudo-terminal's master and slave ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestReceiveAsksAtTerminal: at a terminal, an offer above 1 GB needs a
// yes; "n" refuses it before anything is written, and the sender is told.
func TestReceiveAsksAtTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServer(t)
	src := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1_100_000_000); err != nil { // sparse: nothing is read unless accepted
		t.Fatal(err)
	}
	f.Close()
	send := startFerry(t, ctx, nil, "send", "--json", "--server", srv.URL().String(), src)
	link := send.next(t, ctx, "link").Link

	out := t.TempDir()
	master, slave := openPTY(t)
	recv := exec.CommandContext(ctx, ferryBin, "receive", "--out", out)
	recv.Env = append(os.Environ(), "FERRY_LINK="+link)
	recv.Stdin, recv.Stderr = slave, slave
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan error, 1)
	go func() { exited <- recv.Wait() }()
	var mu sync.Mutex
	var screen strings.Builder
	prompted, drained := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 4096)
		once := sync.Once{}
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			if strings.Contains(screen.String(), "[y/N]") {
				once.Do(func() { close(prompted) })
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	text := func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }
	select {
	case <-prompted:
	case err := <-exited:
		t.Fatalf("receive exited (%v) without asking:\n%s", err, text())
	case <-ctx.Done():
		t.Fatalf("no question:\n%s", text())
	}
	if !strings.Contains(text(), "Accept 1.1 GB (1 file) into "+out+"?") {
		t.Fatalf("question:\n%s", text())
	}
	if _, err := master.Write([]byte("n\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatalf("receive succeeded after no:\n%s", text())
	}
	select {
	case <-drained: // the terminal closed with the process
	case <-ctx.Done():
		t.Fatal("terminal output did not end")
	}
	if !strings.Contains(text(), "declined; nothing was received") {
		t.Fatalf("no clear refusal:\n%s", text())
	}
	if err := send.cmd.Wait(); err == nil || !strings.Contains(send.stderr.String(), "declined") {
		t.Fatalf("sender: %v\n%s", err, send.stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("left behind in %s: %v", out, ents)
	}
}
