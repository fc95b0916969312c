package pathemu

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// Queue says what happens to the packets of one NFQUEUE queue (the lab
// sends each direction of each link pair to its own).
type Queue struct {
	Num uint16
	// Delay is how long each packet is held before it goes on.
	Delay time.Duration
	// Loss is the share of packets dropped, at random (0 to 1).
	Loss float64
	// Reorder is the share of packets held ReorderGap longer than the
	// others, so that the packets behind them overtake them.
	Reorder    float64
	ReorderGap time.Duration
}

// Stats counts what one queue did.
type Stats struct {
	Queue     uint16 `json:"queue"`
	Received  uint64 `json:"received"`
	Dropped   uint64 `json:"dropped"`
	Reordered uint64 `json:"reordered"`
	Released  uint64 `json:"released"`
	// Held is how many wait for their time now.
	Held int `json:"held"`
}

// held is a packet waiting for its time.
type held struct {
	id  uint32
	due time.Duration // since the scheduler's epoch
	// drop: the packet is lost. Its drop verdict goes out in its turn
	// among the others, so that a batch verdict never covers it first.
	drop bool
}

// fifo is a ring of held packets in arrival order: with one delay per
// queue, arrival order is release order.
type fifo struct {
	buf        []held
	head, size int
}

func (f *fifo) push(h held) {
	if f.size == len(f.buf) {
		nb := make([]held, max(1024, 2*len(f.buf)))
		for i := range f.size {
			nb[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = nb, 0
	}
	f.buf[(f.head+f.size)%len(f.buf)] = h
	f.size++
}

func (f *fifo) peek() (held, bool) {
	if f.size == 0 {
		return held{}, false
	}
	return f.buf[f.head], true
}

func (f *fifo) pop() held {
	h := f.buf[f.head]
	f.head = (f.head + 1) % len(f.buf)
	f.size--
	return h
}

// lateHeap holds the reordered packets of a queue, earliest first.
type lateHeap []held

func (h lateHeap) Len() int           { return len(h) }
func (h lateHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h lateHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *lateHeap) Push(x any)        { *h = append(*h, x.(held)) }
func (h *lateHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// queueState is one queue's packets and counters.
type queueState struct {
	cfg   Queue
	on    fifo
	late  lateHeap
	stats Stats
}

// verdict is one decision to send to the kernel.
type verdict struct {
	queue   uint16
	id      uint32
	verdict uint32
	// batch: the verdict applies to every waiting packet of the queue
	// with an id up to id (they were all released together, in order).
	batch bool
}

// scheduler decides each packet's fate and time. It is not safe for
// concurrent use; the emulator guards it.
type scheduler struct {
	queues map[uint16]*queueState
	order  []*queueState // for a stable walk
	rng    *rand.Rand
}

func newScheduler(qs []Queue, seed uint64) *scheduler {
	s := &scheduler{queues: map[uint16]*queueState{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for _, q := range qs {
		st := &queueState{cfg: q, stats: Stats{Queue: q.Num}}
		s.queues[q.Num] = st
		s.order = append(s.order, st)
	}
	return s
}

// arrive takes packet p, which arrived at now, decides its fate and
// returns when it is due. ok is false for a queue nobody configured (a
// stray rule): the caller lets such packets through rather than hold
// them forever.
func (s *scheduler) arrive(p packet, now time.Duration) (due time.Duration, ok bool) {
	q := s.queues[p.queue]
	if q == nil {
		return now, false
	}
	q.stats.Received++
	h := held{id: p.id, due: now + q.cfg.Delay}
	switch {
	case q.cfg.Loss > 0 && s.rng.Float64() < q.cfg.Loss:
		q.stats.Dropped++
		h.drop = true
	case q.cfg.Reorder > 0 && s.rng.Float64() < q.cfg.Reorder:
		q.stats.Reordered++
		h.due += q.cfg.ReorderGap
		heap.Push(&q.late, h)
		return h.due, true
	}
	q.on.push(h)
	return h.due, true
}

// release appends the verdicts for every packet due by now to vs, and
// returns them with the time the next packet is due (ok false: none
// waits).
func (s *scheduler) release(now time.Duration, vs []verdict) ([]verdict, time.Duration, bool) {
	var next time.Duration
	waiting := false
	later := func(d time.Duration) {
		if !waiting || d < next {
			next, waiting = d, true
		}
	}
	for _, q := range s.order {
		// Without reordering the queue's packets leave in id order, and
		// one batch verdict covers each run of them between two drops
		// (verdicts are applied in the order they are sent).
		batch := q.cfg.Reorder == 0
		var last uint32
		pending, n := false, 0
		flush := func() {
			if pending {
				vs = append(vs, verdict{queue: q.cfg.Num, id: last, verdict: verdictAccept, batch: true})
				pending = false
			}
		}
		for {
			h, ok := q.on.peek()
			if !ok {
				break
			}
			if h.due > now {
				later(h.due)
				break
			}
			q.on.pop()
			switch {
			case h.drop:
				flush()
				vs = append(vs, verdict{queue: q.cfg.Num, id: h.id, verdict: verdictDrop})
			case batch:
				last, pending = h.id, true
				n++
			default:
				vs = append(vs, verdict{queue: q.cfg.Num, id: h.id, verdict: verdictAccept})
				n++
			}
		}
		flush()
		for len(q.late) > 0 {
			if q.late[0].due > now {
				later(q.late[0].due)
				break
			}
			h := heap.Pop(&q.late).(held)
			n++
			vs = append(vs, verdict{queue: q.cfg.Num, id: h.id, verdict: verdictAccept})
		}
		q.stats.Released += uint64(n)
	}
	return vs, next, waiting
}

// stats returns every queue's counters.
func (s *scheduler) stats() []Stats {
	out := make([]Stats, 0, len(s.order))
	for _, q := range s.order {
		st := q.stats
		st.Held = q.on.size + len(q.late)
		out = append(out, st)
	}
	return out
}
