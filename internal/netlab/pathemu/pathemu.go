// Package pathemu emulates a network path's latency, loss and reordering
// for the lab, where the kernel has no sch_netem. It runs in a router
// namespace and takes the packets that iptables sends to NFQUEUE queues
// (-j NFQUEUE --queue-num N, one queue per direction), holds each for its
// queue's one-way delay, drops a share at random and lets a share overtake
// the others, by giving the kernel each packet's verdict when its time
// comes. The packets themselves stay in the kernel: only their ids travel,
// and verdicts go out in batches, so one core carries well over 100 MB/s.
//
// The NFQUEUE netlink protocol is spoken directly (golang.org/x/sys/unix):
// it is four messages.
package pathemu

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Config is the emulator's configuration.
type Config struct {
	Queues []Queue
	// MaxLen is how many packets each queue holds at most (the kernel
	// drops what comes past that); 0 means 65536, which at 1,500 bytes
	// and a 50 ms one-way delay carries 1.9 GB/s.
	MaxLen uint32
	// Seed makes the random drops and reorders repeatable; 0 picks one.
	Seed uint64
	// Early is how early a packet may leave: the runtime's timers wake
	// up to about a millisecond late, so releasing what is due within
	// Early of now keeps the mean delay right. 0 means 350 µs.
	Early time.Duration
}

// Errors.
var ErrConfig = errors.New("pathemu: bad configuration")

// Emulator is a running path emulator.
type Emulator struct {
	cfg  Config
	sock *socket

	mu    sync.Mutex
	sched *scheduler
	epoch time.Time
	// armed is when the releaser wakes next (noTime: only when told);
	// the receiver tells it (wake) about packets due before that.
	armed time.Duration
	wake  chan struct{}
}

const noTime = time.Duration(1<<63 - 1)

// New opens the netlink socket and binds the queues. Packets sent to them
// before Run wait in the kernel.
func New(cfg Config) (*Emulator, error) {
	if len(cfg.Queues) == 0 {
		return nil, fmt.Errorf("%w: no queues", ErrConfig)
	}
	seen := map[uint16]bool{}
	for _, q := range cfg.Queues {
		if seen[q.Num] || q.Delay < 0 || q.Loss < 0 || q.Loss > 1 || q.Reorder < 0 || q.Reorder > 1 || q.ReorderGap < 0 {
			return nil, fmt.Errorf("%w: queue %+v", ErrConfig, q)
		}
		seen[q.Num] = true
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = 65536
	}
	if cfg.Early == 0 {
		cfg.Early = 350 * time.Microsecond
	}
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	// 64 MiB: a metadata-only message costs under 1 KiB of buffer, so
	// tens of thousands of packets can arrive while we are busy.
	sock, err := openSocket(64 << 20)
	if err != nil {
		return nil, err
	}
	for _, q := range cfg.Queues {
		if err := sock.bind(q.Num, cfg.MaxLen); err != nil {
			sock.close()
			return nil, fmt.Errorf("pathemu: %w", err)
		}
	}
	return &Emulator{
		cfg:   cfg,
		sock:  sock,
		sched: newScheduler(cfg.Queues, cfg.Seed),
		epoch: time.Now(),
		armed: noTime,
		wake:  make(chan struct{}, 1),
	}, nil
}

// Seed is the seed of the random choices.
func (e *Emulator) Seed() uint64 { return e.cfg.Seed }

// Stats returns each queue's counters.
func (e *Emulator) Stats() []Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sched.stats()
}

// Run carries packets until ctx ends, then closes the socket, which
// unbinds the queues (the kernel drops what still waits in them).
func (e *Emulator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- e.receive(ctx) }()
	go func() { errc <- e.release(ctx) }()
	// The first to end (with an error, or ctx) ends the other.
	first := <-errc
	cancel()
	e.sock.close() // wakes the receiver
	<-errc
	if errors.Is(first, context.Canceled) {
		return nil
	}
	return first
}

// now is the time since the epoch (monotonic).
func (e *Emulator) now() time.Duration { return time.Since(e.epoch) }

// receive reads queued packets and hands them to the scheduler, all that
// is waiting at once.
func (e *Emulator) receive(ctx context.Context) error {
	buf := make([]byte, 1<<16)
	var pkts []packet
	var stray []byte
	for {
		n, err := e.sock.recv(buf)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("pathemu: receive: %w", err)
		}
		pkts = pkts[:0]
		collect := func(p packet) { pkts = append(pkts, p) }
		if err := parseMessages(buf[:n], collect); err != nil {
			return err
		}
		for len(pkts) < 4096 {
			n, ok, err := e.sock.recvMore(buf)
			if err != nil {
				return fmt.Errorf("pathemu: receive: %w", err)
			}
			if !ok {
				break
			}
			if err := parseMessages(buf[:n], collect); err != nil {
				return err
			}
		}
		now := e.now()
		stray = stray[:0]
		e.mu.Lock()
		earliest := noTime
		for _, p := range pkts {
			due, ok := e.sched.arrive(p, now)
			if !ok {
				stray = appendVerdict(stray, p.queue, p.id, verdictAccept, false)
			}
			earliest = min(earliest, due)
		}
		tell := earliest < e.armed
		if tell {
			e.armed = earliest // the releaser will come by then
		}
		e.mu.Unlock()
		if len(stray) > 0 {
			if err := e.sock.send(stray); err != nil {
				return fmt.Errorf("pathemu: verdict: %w", err)
			}
		}
		if tell {
			select {
			case e.wake <- struct{}{}:
			default:
			}
		}
	}
}

// release sends the verdicts of the packets whose time has come, and
// sleeps until the next one's.
func (e *Emulator) release(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var vs []verdict
	var out []byte
	for {
		e.mu.Lock()
		var next time.Duration
		var waiting bool
		vs, next, waiting = e.sched.release(e.now()+e.cfg.Early, vs[:0])
		e.armed = noTime
		if waiting {
			e.armed = next
		}
		e.mu.Unlock()
		out = out[:0]
		for _, v := range vs {
			out = appendVerdict(out, v.queue, v.id, v.verdict, v.batch)
			// The kernel takes a message of up to its socket's buffer;
			// 64 KiB (2,000 verdicts) is well inside it.
			if len(out) > 64<<10 {
				if err := e.sock.send(out); err != nil {
					return fmt.Errorf("pathemu: verdict: %w", err)
				}
				out = out[:0]
			}
		}
		if len(out) > 0 {
			if err := e.sock.send(out); err != nil {
				return fmt.Errorf("pathemu: verdict: %w", err)
			}
		}
		var tc <-chan time.Time
		if waiting {
			timer.Reset(max(0, next-e.cfg.Early-e.now()))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.wake:
		case <-tc:
		}
	}
}
