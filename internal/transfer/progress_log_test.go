package transfer

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
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
		read := func() (*rangeSet, *rootState, int64, logState) {
			have, sum := &rangeSet{n: n}, newRootState(size, chunk, n)
			valid, st, err := readProgressLog(root, "p", hdr, have, sum)
			if err != nil {
				t.Fatal(err)
			}
			return have, sum, valid, st
		}
		have, sum, valid, st := read()
		if st != logValid && have.count() != 0 {
			t.Fatal("an invalid log claims chunks")
		}
		if st == logValid {
			// Continuing it cuts a torn tail; it then reads the same.
			l, err := reopenProgressLog(root, "p", valid)
			if err != nil {
				t.Fatal(err)
			}
			l.close()
			have2, sum2, _, st2 := read()
			if st2 != logValid || !slices.Equal(have2.ranges(), have.ranges()) || sum2.next != sum.next || sum2.hex() != sum.hex() {
				t.Fatalf("reopening changed the state: %v %v vs %v", st2, have2.ranges(), have.ranges())
			}
		}
	})
}
