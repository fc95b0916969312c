package peer_test

import (
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// TestGoToGoStriped stripes a transfer over four connections (forced: Go
// peers stripe only to and from browsers) and the file arrives intact,
// with chunks over more than one connection on both sides.
func TestGoToGoStriped(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "a.bin", 4<<20+5)}
	out := t.TempDir()
	// Forced stripes make the chunks wait for them; small chunks give
	// every connection some.
	o := peer.WithStripes(peer.Options{MaxChunk: 4 << 10}, 4)
	res := transferGoGo(t, srv, files, out, o, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, files[0].Path)) {
		t.Fatal("the received file differs")
	}
	t.Logf("sender used %d connections, receiver got chunks over %d", res.send.Stripes, res.recv.Stripes)
	if res.send.Stripes < 2 || res.recv.Stripes < 2 {
		t.Fatalf("sender used %d connections, receiver got chunks over %d; want stripes", res.send.Stripes, res.recv.Stripes)
	}
}

// TestGoToGoStripedRelay: a relayed generation stripes through the relay
// (its stripes get the TURN servers' UDP URLs), over at most
// MaxRelayStripes connections.
func TestGoToGoStripedRelay(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "a.bin", 4<<20+5)}
	out := t.TempDir()
	// Without QUIC: Go peers run the relayed transfer over QUIC otherwise.
	o := peer.WithStripes(peer.Options{MaxChunk: 4 << 10, RelayOnly: true, NoQUIC: true}, 8)
	res := transferGoGo(t, srv, files, out, o, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, files[0].Path)) {
		t.Fatal("the received file differs")
	}
	if res.send.Path != "relay" || res.recv.Path != "relay" {
		t.Fatalf("paths %q/%q, want relay", res.send.Path, res.recv.Path)
	}
	t.Logf("sender used %d connections, receiver got chunks over %d", res.send.Stripes, res.recv.Stripes)
	if res.send.Stripes != proto.MaxRelayStripes || res.recv.Stripes < 2 {
		t.Fatalf("sender used %d connections, receiver got chunks over %d; want %d through the relay", res.send.Stripes, res.recv.Stripes, proto.MaxRelayStripes)
	}
}

// TestGoToGoRelayedStripesCount: a transfer whose main connection goes
// direct and whose stripes go through the relay counts the bytes of both,
// and reports (and audits) the path that carried most.
func TestGoToGoRelayedStripesCount(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "a.bin", 1<<20+5)}
	out := t.TempDir()
	o := peer.WithRelayStripes(peer.WithStripes(peer.Options{MaxChunk: 4 << 10, NoQUIC: true}, 3))
	res := transferGoGo(t, srv, files, out, o, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, files[0].Path)) {
		t.Fatal("the received file differs")
	}
	if res.send.Stripes < 2 || res.recv.Stripes < 2 {
		t.Fatalf("sender used %d connections, receiver got chunks over %d; want stripes", res.send.Stripes, res.recv.Stripes)
	}
	for _, r := range []*peer.Result{res.send, res.recv} {
		t.Logf("carried %+v, path %s", r.Carried, r.Path)
		if r.Carried.Direct == 0 || r.Carried.Relay == 0 {
			t.Errorf("carried %+v, want bytes on both paths", r.Carried)
		}
		want := "direct"
		if r.Carried.Relay > r.Carried.Direct {
			want = "relay"
		}
		if r.Path != want {
			t.Errorf("path %q, want %q", r.Path, want)
		}
	}
}

// TestGoToGoStripeLost: a stripe lost mid-transfer ends its generation (it
// may have taken chunks with it); the next generation resumes and the
// file arrives intact.
func TestGoToGoStripeLost(t *testing.T) {
	srv := startServer(t)
	src := t.TempDir()
	files := []transfer.SourceFile{randomFile(t, src, "a.bin", 4<<20+5)}
	out := t.TempDir()
	ro := peer.WithStripes(peer.Options{MaxChunk: 4 << 10}, 3)
	o := peer.WithStripeLost(ro, 1, 2, 50)
	res := transferGoGoWith(t, srv, files, out, o, ro, peer.SendOptions{})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send %v, receive %v", res.sendErr, res.recvErr)
	}
	if fileSum(t, files[0].Local) != fileSum(t, filepath.Join(out, files[0].Path)) {
		t.Fatal("the received file differs")
	}
	if res.send.Generations < 2 {
		t.Fatalf("%d generation(s): the lost stripe did not end the first", res.send.Generations)
	}
	t.Logf("%d generations; sender used %d connections", res.send.Generations, res.send.Stripes)
}
