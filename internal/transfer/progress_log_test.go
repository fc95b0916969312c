package transfer

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/internal/proto"
)

func record(idx uint32, fill byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, idx)
	for range proto.HashLen {
		b = append(b, fill)
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// FuzzProgressLog feeds arbitrary bytes as a progress log: opening it must
// never panic, must only trust records that pass their checks, and must
// leave a log that opens again to the same state.
func FuzzProgressLog(f *testing.F) {
	const size, chunk, n = 10_000, 1024, 10
	hdr := logHeader(size, chunk, 7)
	good := append(append(append([]byte{}, hdr...), record(0, 1)...), record(3, 2)...)
	f.Add(good)
	f.Add(append(append([]byte{}, good...), record(4, 3)[:20]...)) // torn tail
	f.Add(append(append([]byte{}, hdr...), record(99, 1)...))      // index out of range
	f.Add([]byte("FERRYPG1 but not really"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "p"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		l, have, hashes, fresh, err := openProgressLog(root, "p", size, chunk, 7, n)
		if err != nil {
			t.Fatal(err)
		}
		l.close()
		if fresh && have.c != 0 {
			t.Fatal("a fresh log claims chunks")
		}
		l2, have2, hashes2, fresh2, err := openProgressLog(root, "p", size, chunk, 7, n)
		if err != nil {
			t.Fatal(err)
		}
		l2.close()
		if fresh2 || have2.c != have.c {
			t.Fatalf("reopening changed the state: fresh %v, %d chunks vs %d", fresh2, have2.c, have.c)
		}
		for i := range hashes {
			if have.has(uint32(i)) && hashes[i] != hashes2[i] {
				t.Fatal("reopening changed a hash")
			}
		}
	})
}
