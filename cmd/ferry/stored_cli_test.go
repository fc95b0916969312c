package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A stored transfer through the command line: two downloads allowed, the
// third is told why not.
func TestStoredCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServer(t)
	src := filepath.Join(t.TempDir(), "report.pdf")
	writeFile(t, src, 5<<20+3)
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_STATE_HOME="}
	send := startFerry(t, ctx, env, "send", "--json", "--store", "--downloads", "2", "--expire", "2d", "--server", srv.URL().String(), src)
	link := send.next(t, ctx, "stored").Link
	if err := send.cmd.Wait(); err != nil {
		t.Fatalf("send --store: %v\n%s", err, send.stderr)
	}
	for i := range 2 {
		out := t.TempDir()
		recv := startFerry(t, ctx, append(env, "FERRY_LINK="+link), "receive", "--json", "--out", out)
		if e := recv.next(t, ctx, "done"); e.Path != "stored" {
			t.Fatalf("receive %d: path %q", i+1, e.Path)
		}
		if sha(t, src) != sha(t, filepath.Join(out, "report.pdf")) {
			t.Fatalf("download %d differs", i+1)
		}
	}
	out := t.TempDir()
	cmd := exec.CommandContext(ctx, ferryBin, "receive", "--out", out)
	cmd.Env = append(os.Environ(), append(env, "FERRY_LINK="+link)...)
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "already downloaded as many times as the sender allowed") {
		t.Fatalf("third download: %v\n%s", err, msg)
	}
	// Its sender can still delete what is left of it.
	del := exec.CommandContext(ctx, ferryBin, "delete")
	del.Env = append(os.Environ(), append(env, "FERRY_LINK="+link)...)
	if msg, err := del.CombinedOutput(); err != nil || !strings.Contains(string(msg), "Deleted") {
		t.Fatalf("delete: %v\n%s", err, msg)
	}
}

// serveProc is `ferry serve` as a process of its own, so a test can kill it.
type serveProc struct {
	cmd  *exec.Cmd
	addr string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startServe(t *testing.T, ctx context.Context, addr, storeDir string) *serveProc {
	t.Helper()
	cmd := exec.Command(ferryBin, "serve", "--addr", addr, "--turn-listen", "", "--store-dir", storeDir, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // by pid; a no-op once it exited
		cmd.Wait()
	})
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return &serveProc{cmd: cmd, addr: addr}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("ferry serve did not come up on %s", addr)
		case <-time.After(20 * time.Millisecond): // polling for the port, not for a result
		}
	}
}

func (s *serveProc) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
}

// TestStoredServerKilled kills the server (SIGKILL) in the middle of an
// upload and in the middle of a download; started again on the same
// folder, it continues both, and the file arrives whole.
func TestStoredServerKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const size = 200 << 20
	src := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, size)
	addr, store := freeAddr(t), t.TempDir()
	srv := startServe(t, ctx, addr, store)
	env := []string{"HOME=" + t.TempDir(), "XDG_STATE_HOME="}

	// Pause the other side while the server dies, so that the kill lands
	// in the middle whatever the machine's speed.
	killMidway := func(p *proc) {
		for {
			e := p.next(t, ctx, "progress", "done", "stored")
			if e.Event != "progress" {
				t.Fatalf("%s finished before the server could be killed", p.cmd.Args[1])
			}
			if e.Done >= size/3 {
				break
			}
		}
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		srv.kill(t)
		srv = startServe(t, ctx, addr, store)
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	send := startFerry(t, ctx, env, "send", "--json", "--store", "--server", "http://"+addr, src)
	killMidway(send)
	link := send.next(t, ctx, "stored").Link

	out := t.TempDir()
	recv := startFerry(t, ctx, append(env, "FERRY_LINK="+link), "receive", "--json", "--out", out)
	killMidway(recv)
	done := recv.next(t, ctx, "done")
	if sha(t, src) != sha(t, filepath.Join(out, "big.bin")) || done.Bytes != size {
		t.Fatalf("the file differs after the server was killed twice (done %+v)", done)
	}
}

// A live send nobody opens in time stores the files, and the link it
// already printed then works from storage.
func TestStoreAfterCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServer(t)
	src := filepath.Join(t.TempDir(), "notes.txt")
	writeFile(t, src, 3<<20)
	env := []string{"HOME=" + t.TempDir(), "XDG_STATE_HOME="}
	send := startFerry(t, ctx, env, "send", "--json", "--store-after", "1s", "--server", srv.URL().String(), src)
	link := send.next(t, ctx, "link").Link
	if stored := send.next(t, ctx, "stored").Link; stored != link {
		t.Fatalf("stored under %s, the live link was %s", stored, link)
	}
	if err := send.cmd.Wait(); err != nil {
		t.Fatalf("send: %v\n%s", err, send.stderr)
	}
	out := t.TempDir()
	recv := startFerry(t, ctx, append(env, "FERRY_LINK="+link), "receive", "--json", "--out", out)
	if e := recv.next(t, ctx, "done"); e.Path != "stored" {
		t.Fatalf("path %q", e.Path)
	}
	if sha(t, src) != sha(t, filepath.Join(out, "notes.txt")) {
		t.Fatal("the stored file differs")
	}
}
