package transfer_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// scriptConn replays frames to a Receiver and swallows what it sends.
type scriptConn struct {
	frames [][]byte
}

func (c *scriptConn) Send([]byte) error { return nil }
func (c *scriptConn) Recv() ([]byte, error) {
	if len(c.frames) == 0 {
		return nil, transfer.ErrPipeClosed
	}
	f := c.frames[0]
	c.frames = c.frames[1:]
	return f, nil
}
func (c *scriptConn) MaxMessage() int { return 1 << 20 }
func (c *scriptConn) Close() error    { return nil }

// splitFrames cuts fuzz input into frames: u16 length, then bytes.
func splitFrames(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 && len(out) < 64 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func frame(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}

// FuzzReceiver plays a malicious sender: whatever it sends after (or
// instead of) a manifest, the receiver must not panic, must not write
// outside its folder, and must not declare success for data that was not
// verified.
func FuzzReceiver(f *testing.F) {
	man, _ := proto.MarshalControl(&proto.Manifest{Version: 1, ChunkSize: 1024, TotalSize: 1500,
		Files: []proto.File{{Path: "a/b.bin", Size: 1500}}})
	data := make([]byte, 1024)
	c := proto.Chunk{File: 0, Index: 0, Hash: proto.ChunkHash(data), Data: data}
	eof, _ := proto.MarshalControl(&proto.EOF{File: 0, Root: strings.Repeat("0", 64)})
	done, _ := proto.MarshalControl(&proto.Done{})
	f.Add(frame(man, c.Marshal(), eof, done))
	f.Add(frame(man, c.Marshal(), c.Marshal()))
	bad := c
	bad.Index = 9
	f.Add(frame(man, bad.Marshal()))
	evil, _ := proto.MarshalControl(&proto.Manifest{Version: 1, ChunkSize: 1024, TotalSize: 1, Files: []proto.File{{Path: "../escape", Size: 1}}})
	f.Add(frame(evil))
	f.Fuzz(func(t *testing.T, in []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "in")
		r := &transfer.Receiver{Dir: dir, Window: 4}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := r.Run(ctx, &scriptConn{frames: splitFrames(in)})
		r.Close()
		if err == nil && !r.Complete() {
			t.Fatal("Run succeeded without completing")
		}
		// Nothing may appear next to the target folder.
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.Name() != "in" {
				t.Fatalf("wrote %s outside the target folder", e.Name())
			}
		}
		if r.Complete() {
			// Every complete file must match its verified root: the only
			// way to complete is a correct root over verified chunks.
			for _, p := range r.Roots() {
				if len(p) != 64 {
					t.Fatalf("bad root %q", p)
				}
			}
		}
	})
}
