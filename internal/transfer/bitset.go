package transfer

import (
	"math/bits"

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

// clear unmarks i and reports whether it was set.
func (b *bitset) clear(i uint32) bool {
	if !b.has(i) {
		return false
	}
	b.w[i/64] &^= 1 << (i % 64)
	b.c--
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
