package peer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// A sender that stops sending but keeps its connection makes the receiver
// give up with a clear error instead of waiting forever; the resume state
// stays, and running the receiver again continues the transfer.
func TestReceiveGivesUpOnSilentSender(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "s.bin", 4<<20+5)}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	release := make(chan struct{})
	var once sync.Once
	stall := func(file int, index uint32, data []byte) {
		if index == 2 {
			once.Do(func() {
				select { // the sender hangs with the connection open
				case <-release:
				case <-ctx.Done():
				}
			})
		}
	}
	links := make(chan string, 1)
	scfg := &peer.Config{Server: srv.URL(), Events: peer.Events{Link: func(l string, _ time.Time) { links <- l }}}
	sendErr := make(chan error, 1)
	go func() {
		_, err := peer.Send(ctx, scfg, files, peer.SendOptions{Mangle: stall})
		sendErr <- err
	}()
	var link string
	select {
	case link = <-links:
	case <-ctx.Done():
		t.Fatal("no link")
	}
	base, tk, err := ticket.ParseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	rcfg := &peer.Config{Server: srv.URL()}
	start := time.Now()
	_, err = peer.Receive(ctx, rcfg, base, tk, peer.ReceiveOptions{Dir: out, Idle: 1500 * time.Millisecond})
	if !errors.Is(err, transfer.ErrIdle) {
		t.Fatalf("receive from a silent sender: %v, want ErrIdle", err)
	}
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := os.Stat(filepath.Join(out, peer.StateFile(tk.ID))); err != nil {
		t.Fatalf("resume state gone: %v", err)
	}

	// The sender comes back to life; the same command continues.
	close(release)
	res, err := peer.Receive(ctx, rcfg, base, tk, peer.ReceiveOptions{Dir: out})
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("sender: %v", err)
	}
	if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, "s.bin")) {
		t.Fatal("file differs")
	}
	t.Logf("rerun: %d bytes, %d connection(s)", res.Bytes, res.Generations)
}
