package scaletest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/redistest"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/servertest"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// startInstance runs one `ferry serve` in-process on loopback, sharing
// the store in Redis at redisURL.
func startInstance(t *testing.T, redisURL string) *server.Server {
	t.Helper()
	cfg := servertest.Config()
	cfg.Redis = redisURL
	return servertest.Start(t, cfg, server.Options{})
}

// twoInstances is the smallest cluster: instances A and B behind one
// (imaginary) load balancer, and their Redis.
func twoInstances(t *testing.T) (a, b *server.Server) {
	t.Helper()
	rs := redistest.Start(t)
	return startInstance(t, rs.URL()), startInstance(t, rs.URL())
}

func dial(t *testing.T, ctx context.Context, srv *server.Server) *sigclient.Conn {
	t.Helper()
	c, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sha(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestTransferAcrossInstances: a Go sender on instance A, a Go receiver on
// instance B (the link's host rewritten, as a load balancer would route
// it); they can only pair through the shared Redis.
func TestTransferAcrossInstances(t *testing.T) {
	a, b := twoInstances(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	src := filepath.Join(t.TempDir(), "cross.bin")
	data := make([]byte, 3<<20+123)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	files := []transfer.SourceFile{{Path: "cross.bin", Local: src, Size: int64(len(data)), Mtime: time.Now().Truncate(time.Millisecond)}}
	out := t.TempDir()

	links := make(chan string, 1)
	scfg := &peer.Config{Server: a.URL(), Events: peer.Events{Link: func(l string, _ time.Time) { links <- l }}}
	var (
		wg      sync.WaitGroup
		recvRes *peer.Result
		recvErr error
		onHost  string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var link string
		select {
		case link = <-links:
		case <-ctx.Done():
			recvErr = ctx.Err()
			return
		}
		base, tk, err := ticket.ParseLink(link)
		if err != nil {
			recvErr = err
			return
		}
		base.Host = b.URL().Host
		onHost = base.Host
		rcfg := &peer.Config{Server: b.URL()}
		recvRes, recvErr = peer.Receive(ctx, rcfg, base, tk, peer.ReceiveOptions{Dir: out})
		if recvErr != nil {
			cancel() // the sender would wait for a receiver until the deadline
		}
	}()
	sendRes, sendErr := peer.Send(ctx, scfg, files, peer.SendOptions{})
	if sendErr != nil {
		cancel()
	}
	wg.Wait()
	if sendErr != nil || recvErr != nil {
		t.Fatalf("send %v, receive %v", sendErr, recvErr)
	}
	if onHost == a.URL().Host {
		t.Fatal("the receiver was not routed to instance B")
	}
	if sha(t, src) != sha(t, filepath.Join(out, "cross.bin")) {
		t.Fatal("received file differs")
	}
	if sendRes.Bytes != int64(len(data)) || recvRes.Bytes != int64(len(data)) {
		t.Fatalf("bytes: sent %d, received %d, want %d", sendRes.Bytes, recvRes.Bytes, len(data))
	}
}

// TestConsumeRaceAcrossInstances: two receivers open the same link at the
// same moment, one through each instance. Exactly one joins (and pairs
// with the sender); the other hears "used".
func TestConsumeRaceAcrossInstances(t *testing.T) {
	a, b := twoInstances(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for round := range 10 {
		s := dial(t, ctx, a)
		created, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ra, rb := dial(t, ctx, a), dial(t, ctx, b)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, r := range []*sigclient.Conn{ra, rb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = r.Join(ctx, created.ID)
			}()
		}
		close(start)
		wg.Wait()
		var winner *sigclient.Conn
		switch {
		case errs[0] == nil && errors.Is(errs[1], sigclient.ErrUsed):
			winner = ra
		case errs[1] == nil && errors.Is(errs[0], sigclient.ErrUsed):
			winner = rb
		default:
			t.Fatalf("round %d: joins via A and B returned %v and %v; want one success and one ErrUsed", round, errs[0], errs[1])
		}
		if err := winner.WaitPaired(ctx); err != nil {
			t.Fatalf("round %d: winner: %v", round, err)
		}
		if err := s.WaitPaired(ctx); err != nil {
			t.Fatalf("round %d: sender: %v", round, err)
		}
		// The pairing relays, whichever instance the winner is on.
		if err := s.SendFrame(ctx, []byte{byte(round)}); err != nil {
			t.Fatal(err)
		}
		if f, err := winner.NextFrame(ctx); err != nil || !bytes.Equal(f, []byte{byte(round)}) {
			t.Fatalf("round %d: relayed frame %x, %v", round, f, err)
		}
		s.Close()
		ra.Close()
		rb.Close()
	}
}

// handshakeBoth runs HELLO/CONFIRM on both ends of a pairing.
func handshakeBoth(t *testing.T, ctx context.Context, s, r *sigclient.Conn, ikm []byte, ctxID string) *handshake.Keys {
	t.Helper()
	var wg sync.WaitGroup
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, rerr = r.Handshake(ctx, ikm, ctxID, handshake.Receiver)
	}()
	sk, err := s.Handshake(ctx, ikm, ctxID, handshake.Sender)
	wg.Wait()
	if err != nil || rerr != nil {
		t.Fatalf("handshake: sender %v, receiver %v", err, rerr)
	}
	return sk
}

// exchange sends one sealed signal each way.
func exchange(t *testing.T, ctx context.Context, s, r *sigclient.Conn, gen int) {
	t.Helper()
	if err := s.SendSignal(ctx, proto.Signal{T: proto.SigSDP, Type: "offer", SDP: "v=0 offer", Gen: gen}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.RecvSignal(ctx); err != nil || got.SDP != "v=0 offer" || got.Gen != gen {
		t.Fatalf("offer: %+v, %v", got, err)
	}
	if err := r.SendSignal(ctx, proto.Signal{T: proto.SigSDP, Type: "answer", SDP: "v=0 answer", Gen: gen}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RecvSignal(ctx); err != nil || got.SDP != "v=0 answer" || got.Gen != gen {
		t.Fatalf("answer: %+v, %v", got, err)
	}
}

// TestResumeAcrossInstances: a pairing on instance A registers a resume
// session; the receiver's connection drops and it comes back through
// instance B. Then a newer receiver connection on A replaces the one on B.
func TestResumeAcrossInstances(t *testing.T) {
	a, b := twoInstances(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s := dial(t, ctx, a)
	created, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := dial(t, ctx, a)
	if _, err := r.Join(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{7}, 16)
	sk := handshakeBoth(t, ctx, s, r, secret, created.ID)
	if err := s.Send(ctx, proto.ClientMessage{Type: proto.MsgSession, Session: sk.SessionID}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Next(ctx); err != nil || m.Type != proto.MsgSession {
		t.Fatalf("session ack: %+v %v", m, err)
	}

	// The receiver's WebSocket drops; the sender on A hears about it.
	r.Close()
	if _, err := s.NextFrame(ctx); !errors.Is(err, sigclient.ErrPeerGone) {
		t.Fatalf("sender after the receiver left: %v", err)
	}
	// The receiver reconnects and lands on B; the sender comes back on A.
	r2 := dial(t, ctx, b)
	if _, err := r2.Resume(ctx, sk.SessionID, "R"); err != nil {
		t.Fatalf("resume on B: %v", err)
	}
	s2 := dial(t, ctx, a)
	if _, err := s2.Resume(ctx, sk.SessionID, "S"); err != nil {
		t.Fatalf("resume on A: %v", err)
	}
	if err := r2.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	handshakeBoth(t, ctx, s2, r2, sk.SessionSecret, sk.SessionID)
	exchange(t, ctx, s2, r2, 2)

	// A newer receiver connection, on A, replaces the one on B: the old one
	// is told so across instances, and the stale pairing ends.
	r3 := dial(t, ctx, a)
	if _, err := r3.Resume(ctx, sk.SessionID, "R"); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.NextFrame(ctx); !errors.Is(err, sigclient.ErrReplaced) {
		t.Fatalf("replaced connection on B: %v", err)
	}
	if _, err := s2.NextFrame(ctx); !errors.Is(err, sigclient.ErrPeerGone) {
		t.Fatalf("stale pairing: %v", err)
	}
	// Both reconnect once more, the sender on B this time.
	s3 := dial(t, ctx, b)
	if _, err := s3.Resume(ctx, sk.SessionID, "S"); err != nil {
		t.Fatal(err)
	}
	if err := s3.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r3.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	handshakeBoth(t, ctx, s3, r3, sk.SessionSecret, sk.SessionID)
	exchange(t, ctx, s3, r3, 3)

	// Unknown sessions are unknown on every instance.
	if _, err := dial(t, ctx, b).Resume(ctx, "AAAAAAAAAAAAAAAAAAAAAA", "S"); !errors.Is(err, sigclient.ErrUnknown) {
		t.Fatalf("unknown session on B: %v", err)
	}
}

// TestSenderLeftAcrossInstances: a ticket whose sender on A went away is
// unknown to a receiver on B (the ticket died with its sender).
func TestSenderLeftAcrossInstances(t *testing.T) {
	a, b := twoInstances(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := dial(t, ctx, a)
	created, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A notices the close asynchronously; a connection leaves A's table
	// only after its cleanup (which deletes the ticket) ran. Poll, bounded.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for a.Signaling().Conns() != 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("instance A still holds the sender's connection")
		}
	}
	if _, err := dial(t, ctx, b).Join(ctx, created.ID); !errors.Is(err, sigclient.ErrUnknown) {
		t.Fatalf("join on B after the sender left A: %v, want ErrUnknown", err)
	}
}
