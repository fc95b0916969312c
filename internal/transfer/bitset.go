package transfer

import (
	"math/bits"
	"slices"
	"sort"

	"github.com/ferrydev/ferry/internal/proto"
)

// bitset tracks which chunks of a file are present.
type bitset struct {
	w []uint64
	n uint32 // number of bits
	c uint32 // number set
}

func newBitset(n uint32) *bitset { return &bitset{w: make([]uint64, (n+63)/64), n: n} }

func (b *bitset) clone() *bitset {
	return &bitset{w: append([]uint64(nil), b.w...), n: b.n, c: b.c}
}

func (b *bitset) has(i uint32) bool { return b.w[i/64]&(1<<(i%64)) != 0 }

// set marks i and reports whether it was newly set.
func (b *bitset) set(i uint32) bool {
	if b.has(i) {
		return false
	}
	b.w[i/64] |= 1 << (i % 64)
	b.c++
	return true
}

func (b *bitset) full() bool { return b.c == b.n }

// nextClear returns the first clear index >= i, or b.n.
func (b *bitset) nextClear(i uint32) uint32 {
	for i < b.n {
		w := ^b.w[i/64] >> (i % 64)
		if w != 0 {
			j := i + uint32(bits.TrailingZeros64(w))
			if j > b.n {
				return b.n
			}
			return j
		}
		i = (i/64 + 1) * 64
	}
	return b.n
}

// ranges returns the set bits as half-open ranges.
func (b *bitset) ranges() []proto.Range {
	var out []proto.Range
	for i := uint32(0); i < b.n; {
		if !b.has(i) {
			i = b.nextSet(i)
			continue
		}
		j := b.nextClear(i)
		out = append(out, proto.Range{i, j})
		i = j
	}
	return out
}

func (b *bitset) nextSet(i uint32) uint32 {
	for i < b.n {
		w := b.w[i/64] >> (i % 64)
		if w != 0 {
			return min(b.n, i+uint32(bits.TrailingZeros64(w)))
		}
		i = (i/64 + 1) * 64
	}
	return b.n
}

// setRanges marks every index in rs; out-of-range indices are an error.
func (b *bitset) setRanges(rs []proto.Range) bool {
	for _, r := range rs {
		if r[0] >= r[1] || r[1] > b.n {
			return false
		}
		for i := r[0]; i < r[1]; i++ {
			b.set(i)
		}
	}
	return true
}

// rangeSet is a set of chunk indices kept as sorted, disjoint, non-adjacent
// half-open runs. The receiver uses it instead of a bitset because its size
// follows what arrived (in-order chunks make one run), not the chunk count
// an offer claims: a bitset for a 4 TiB file of 1 KiB chunks is 512 MiB.
type rangeSet struct {
	r []proto.Range
	n uint32 // indices are < n
	c uint64 // number of indices set
}

// find returns the first run whose end is >= i.
func (s *rangeSet) find(i uint32) int {
	return sort.Search(len(s.r), func(k int) bool { return s.r[k][1] >= i })
}

func (s *rangeSet) has(i uint32) bool {
	k := s.find(i)
	if k < len(s.r) && s.r[k][1] == i {
		k++
	}
	return k < len(s.r) && s.r[k][0] <= i
}

// set adds i (< n) and reports whether it was newly added.
func (s *rangeSet) set(i uint32) bool {
	k := s.find(i)
	switch {
	case k < len(s.r) && s.r[k][1] == i: // extends run k
		s.r[k][1]++
		if k+1 < len(s.r) && s.r[k+1][0] == i+1 {
			s.r[k][1] = s.r[k+1][1]
			s.r = slices.Delete(s.r, k+1, k+2)
		}
	case k < len(s.r) && s.r[k][0] <= i:
		return false
	case k < len(s.r) && s.r[k][0] == i+1: // precedes run k
		s.r[k][0] = i
	default:
		s.r = slices.Insert(s.r, k, proto.Range{i, i + 1})
	}
	s.c++
	return true
}

// clear removes i and reports whether it was present.
func (s *rangeSet) clear(i uint32) bool {
	if !s.has(i) {
		return false
	}
	k := sort.Search(len(s.r), func(k int) bool { return s.r[k][1] > i })
	switch run := s.r[k]; {
	case run[0] == i && run[1] == i+1:
		s.r = slices.Delete(s.r, k, k+1)
	case run[0] == i:
		s.r[k][0]++
	case run[1] == i+1:
		s.r[k][1]--
	default:
		s.r[k][1] = i
		s.r = slices.Insert(s.r, k+1, proto.Range{i + 1, run[1]})
	}
	s.c--
	return true
}

func (s *rangeSet) full() bool { return s.c == uint64(s.n) }

func (s *rangeSet) count() uint64 { return s.c }

// ranges returns the runs (a copy).
func (s *rangeSet) ranges() []proto.Range { return slices.Clone(s.r) }

func (s *rangeSet) reset() { s.r, s.c = nil, 0 }

// fill sets every index.
func (s *rangeSet) fill() {
	s.r, s.c = nil, uint64(s.n)
	if s.n > 0 {
		s.r = []proto.Range{{0, s.n}}
	}
}
