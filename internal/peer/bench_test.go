package peer_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/transfer"
)

// BenchmarkGoToGo moves a file between two Go peers in this process
// through a real server, for comparing settings as ratios in one run
// (`ferry bench` measures two separate processes).
func BenchmarkGoToGo(b *testing.B) {
	srv := startServer(b)
	src := b.TempDir()
	const size = 128 << 20
	files := []transfer.SourceFile{randomFile(b, src, "bench.bin", size)}
	for _, c := range []struct {
		name string
		o    peer.Options
	}{
		{"default", peer.Options{}},
		{"plain-udp", peer.Options{PlainUDP: true}},
		{"chunk256k", peer.Options{MaxChunk: 256 << 10}},
		{"chunk64k", peer.Options{MaxChunk: 64 << 10}},
		{"relay", peer.Options{RelayOnly: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for i := range b.N {
				res := transferGoGo(b, srv, files, filepath.Join(b.TempDir(), fmt.Sprint(i)), c.o, peer.SendOptions{})
				if res.sendErr != nil || res.recvErr != nil {
					b.Fatal(res.sendErr, res.recvErr)
				}
			}
		})
	}
}
