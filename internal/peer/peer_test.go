package peer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/servertest"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

func startServer(t testing.TB) *server.Server {
	return servertest.Start(t, servertest.Config(), server.Options{})
}

func randomFile(t testing.TB, dir, name string, size int) transfer.SourceFile {
	t.Helper()
	p := filepath.Join(dir, name)
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return transfer.SourceFile{Path: name, Local: p, Size: int64(size), Mtime: time.Now().Truncate(time.Millisecond)}
}

func fileSum(t testing.TB, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

type transferResult struct {
	link             string
	send, recv       *peer.Result
	sendErr, recvErr error
	phraseS, phraseR []string
	chunkSize        int // from the manifest the receiver got
}

// transferGoGo runs a Go sender and a Go receiver through srv.
func transferGoGo(t testing.TB, srv *server.Server, files []transfer.SourceFile, out string, o peer.Options, so peer.SendOptions) transferResult {
	t.Helper()
	return transferGoGoWith(t, srv, files, out, o, o, so)
}

// transferGoGoWith is transferGoGo with the sender's options o and the
// receiver's ro.
func transferGoGoWith(t testing.TB, srv *server.Server, files []transfer.SourceFile, out string, o, ro peer.Options, so peer.SendOptions) transferResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res transferResult
	links := make(chan string, 1)
	var mu sync.Mutex
	scfg := &peer.Config{Server: srv.URL(), Options: o, Events: peer.Events{
		Link:   func(l string, _ time.Time) { links <- l },
		Phrase: func(w []string) { mu.Lock(); res.phraseS = w; mu.Unlock() },
	}}
	rcfg := &peer.Config{Server: srv.URL(), Options: ro, Events: peer.Events{
		Phrase:   func(w []string) { mu.Lock(); res.phraseR = w; mu.Unlock() },
		Manifest: func(m *proto.Manifest) { mu.Lock(); res.chunkSize = m.ChunkSize; mu.Unlock() },
	}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var link string
		select {
		case link = <-links:
		case <-ctx.Done():
			res.recvErr = ctx.Err()
			return
		}
		res.link = link
		base, tk, err := ticket.ParseLink(link)
		if err != nil {
			res.recvErr = err
			return
		}
		res.recv, res.recvErr = peer.Receive(ctx, rcfg, base, tk, peer.ReceiveOptions{Dir: out})
	}()
	res.send, res.sendErr = peer.Send(ctx, scfg, files, so)
	if res.sendErr != nil {
		cancel()
	}
	wg.Wait()
	return res
}

func TestGoToGoDirect(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "a.bin", 3<<20+17), randomFile(t, src, "b.bin", 1000)}
	out := t.TempDir()
	res := transferGoGo(t, srv, files, out, peer.Options{}, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	for _, f := range files {
		if fileSum(t, f.Local) != fileSum(t, filepath.Join(out, f.Path)) {
			t.Fatalf("%s differs", f.Path)
		}
	}
	if res.send.Path != "direct" || res.recv.Path != "direct" {
		t.Fatalf("paths %q/%q, want direct", res.send.Path, res.recv.Path)
	}
	// ICE counted the transfer's bytes (QUIC's batches too) on each side.
	for _, r := range []*peer.Result{res.send, res.recv} {
		if r.Carried.Direct < 3<<20 || r.Carried.Relay != 0 {
			t.Fatalf("carried %+v, want the files' bytes direct", r.Carried)
		}
	}
	// The sender knew its peer was a Go peer before connecting (its info
	// arrives first), so chunks are not cut to a browser's 64 KiB.
	if res.chunkSize != transfer.DefaultMaxChunk {
		t.Fatalf("chunk size %d, want %d", res.chunkSize, transfer.DefaultMaxChunk)
	}
	// Two Go peers on one machine send 64 KiB SCTP packets (mtu.go), and
	// so keep the transfer on the data channel rather than QUIC (at most
	// 1452-byte packets).
	if res.send.Transport != peer.TransportSCTP || res.recv.Transport != peer.TransportSCTP {
		t.Fatalf("transports %q/%q, want sctp", res.send.Transport, res.recv.Transport)
	}
	if res.send.PacketSize != 65000 || res.recv.PacketSize != 65000 {
		t.Fatalf("SCTP packets %d/%d bytes, want 65000", res.send.PacketSize, res.recv.PacketSize)
	}
	if len(res.phraseS) != 4 || res.phraseS[0] != res.phraseR[0] || res.phraseS[3] != res.phraseR[3] {
		t.Fatalf("phrases %v / %v", res.phraseS, res.phraseR)
	}
	if _, err := os.Stat(filepath.Join(out, peer.StateFile("x"))); err == nil {
		t.Fatal("state file left")
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 2 {
		t.Fatalf("out dir has %d entries, want the 2 files only", len(ents))
	}
}

// Where SCTP packets are as small as on a routed path, two Go peers run
// the transfer over QUIC, whose path MTU discovery goes past the initial
// 1280 bytes on loopback.
func TestGoToGoQUIC(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "q.bin", 6<<20+3), randomFile(t, src, "r.bin", 999)}
	out := t.TempDir()
	res := transferGoGo(t, srv, files, out, peer.Options{SmallPackets: true}, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	for _, f := range files {
		if fileSum(t, f.Local) != fileSum(t, filepath.Join(out, f.Path)) {
			t.Fatalf("%s differs", f.Path)
		}
	}
	if res.send.Transport != peer.TransportQUIC || res.recv.Transport != peer.TransportQUIC {
		t.Fatalf("transports %q/%q, want quic", res.send.Transport, res.recv.Transport)
	}
	if res.send.PacketSize <= 1280 {
		t.Fatalf("QUIC packets of %d bytes on average, want more than 1280", res.send.PacketSize)
	}
	if res.chunkSize != transfer.DefaultMaxChunk {
		t.Fatalf("chunk size %d, want %d", res.chunkSize, transfer.DefaultMaxChunk)
	}
}

// With --no-quic on either side the transfer stays on the data channel
// (small packets, as on a routed path, where QUIC would be used):
// the side that opts out does not announce FeatureQUIC (receiver), or
// does not start the exchange and sends the manifest first (sender).
func TestGoToGoNoQUIC(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "n.bin", 2<<20+5)}
	for _, c := range []struct {
		name   string
		so, ro peer.Options
	}{
		{"both", peer.Options{NoQUIC: true, SmallPackets: true}, peer.Options{NoQUIC: true, SmallPackets: true}},
		{"sender", peer.Options{NoQUIC: true, SmallPackets: true}, peer.Options{SmallPackets: true}},
		{"receiver", peer.Options{SmallPackets: true}, peer.Options{NoQUIC: true, SmallPackets: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			res := transferGoGoWith(t, srv, files, out, c.so, c.ro, peer.SendOptions{})
			if res.sendErr != nil || res.recvErr != nil {
				t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
			}
			if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, "n.bin")) {
				t.Fatal("file differs")
			}
			if res.send.Transport != peer.TransportSCTP || res.recv.Transport != peer.TransportSCTP {
				t.Fatalf("transports %q/%q, want sctp", res.send.Transport, res.recv.Transport)
			}
			if res.send.PacketSize != 1191 || res.recv.PacketSize != 1191 {
				t.Fatalf("SCTP packets %d/%d bytes, want 1191", res.send.PacketSize, res.recv.PacketSize)
			}
		})
	}
}

func TestGoToGoRelay(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "r.bin", 2<<20)}
	out := t.TempDir()
	res := transferGoGo(t, srv, files, out, peer.Options{RelayOnly: true}, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, "r.bin")) {
		t.Fatal("file differs")
	}
	if res.send.Path != "relay" || res.recv.Path != "relay" {
		t.Fatalf("paths %q/%q, want relay", res.send.Path, res.recv.Path)
	}
	// QUIC through the relay too.
	if res.send.Transport != peer.TransportQUIC || res.recv.Transport != peer.TransportQUIC {
		t.Fatalf("transports %q/%q through the relay, want quic", res.send.Transport, res.recv.Transport)
	}
	if srv.Relay().RelayedBytes() < 2<<20 {
		t.Fatalf("relay carried only %d bytes", srv.Relay().RelayedBytes())
	}
	for _, r := range []*peer.Result{res.send, res.recv} {
		if r.Carried.Relay < 2<<20 || r.Carried.Direct != 0 {
			t.Fatalf("carried %+v, want the file's bytes relayed", r.Carried)
		}
	}
}

func TestReceiveSpentLink(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "x", 10)}
	res := transferGoGo(t, srv, files, t.TempDir(), peer.Options{}, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base, tk, err := ticket.ParseLink(res.link)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh folder has no resume state: the spent ticket is refused.
	_, err = peer.Receive(ctx, &peer.Config{Server: base}, base, tk, peer.ReceiveOptions{Dir: t.TempDir()})
	if !errors.Is(err, sigclient.ErrUsed) {
		t.Fatalf("reusing a link: %v", err)
	}
	tk.ID = "AAAAAAAAAAAA"
	_, err = peer.Receive(ctx, &peer.Config{Server: base}, base, tk, peer.ReceiveOptions{Dir: t.TempDir()})
	if !errors.Is(err, sigclient.ErrUnknown) {
		t.Fatalf("unknown link: %v", err)
	}
}

func TestGoToGoCorruptChunk(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "c.bin", 5<<20)}
	out := t.TempDir()
	var mu sync.Mutex
	hit := 0
	res := transferGoGo(t, srv, files, out, peer.Options{}, peer.SendOptions{Mangle: func(file int, index uint32, data []byte) {
		if index == 2 {
			mu.Lock()
			hit++
			mu.Unlock()
			data[0] ^= 0x55
		}
	}})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, "c.bin")) {
		t.Fatal("file differs")
	}
	if hit != 1 || res.send.Sent <= files[0].Size {
		t.Fatalf("corrupted %d chunks, sent %d of %d bytes: the bad chunk was not re-fetched", hit, res.send.Sent, files[0].Size)
	}
}
