package transfer

import (
	"math/rand/v2"
	"testing"
)

// rangeSet must agree with a plain set under random sets and clears, and
// keep its runs sorted, disjoint and non-adjacent.
func TestRangeSetMatchesMap(t *testing.T) {
	const n = 200
	rng := rand.New(rand.NewPCG(1, 2))
	s := &rangeSet{n: n}
	ref := map[uint32]bool{}
	for step := range 20_000 {
		i := rng.Uint32N(n)
		if rng.IntN(3) == 0 {
			if got, want := s.clear(i), ref[i]; got != want {
				t.Fatalf("step %d: clear(%d) = %v, want %v", step, i, got, want)
			}
			delete(ref, i)
		} else {
			if got, want := s.set(i), !ref[i]; got != want {
				t.Fatalf("step %d: set(%d) = %v, want %v", step, i, got, want)
			}
			ref[i] = true
		}
		if s.count() != uint64(len(ref)) {
			t.Fatalf("step %d: count %d, want %d", step, s.count(), len(ref))
		}
		for k, r := range s.r {
			if r[0] >= r[1] || r[1] > n || (k > 0 && s.r[k-1][1] >= r[0]) {
				t.Fatalf("step %d: runs %v", step, s.r)
			}
		}
		for j := range uint32(n) {
			if s.has(j) != ref[j] {
				t.Fatalf("step %d: has(%d) = %v", step, j, s.has(j))
			}
		}
	}
	for j := range uint32(n) {
		s.set(j)
	}
	if !s.full() || len(s.r) != 1 {
		t.Fatalf("all set: full %v, runs %v", s.full(), s.r)
	}
}
