package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// Fakes for the driver's seams: a signaler, generations over
// transfer.Pipe, and a clock that moves only when a test says so. With them
// the driver runs in microseconds, without a server, pion or a network.

// waitBound bounds every wait of a test for the driver (real time: it is a
// bound, not a synchronisation).
const waitBound = 5 * time.Second

// changes is a broadcast: wait returns a channel closed at the next change.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *changes) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// until waits (bounded) until cond, checked under mu after every change.
func until(t *testing.T, c *changes, mu *sync.Mutex, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitBound)
	defer deadline.Stop()
	for {
		w := c.wait()
		mu.Lock()
		ok := cond()
		mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// fakeClock's time moves only in fire.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed changes
}

type fakeTimer struct {
	c  *fakeClock
	d  time.Duration
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1e9, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	c.mu.Lock()
	t := &fakeTimer{c: c, d: d, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.changed.notify()
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *fakeTimer) bool { return x == t })
	return len(t.c.timers) < n
}

// fire waits until a timer of duration d is pending, then moves the clock
// to its deadline, firing it and every timer due by then.
func (c *fakeClock) fire(t *testing.T, d time.Duration) {
	t.Helper()
	var at time.Time
	until(t, &c.changed, &c.mu, fmt.Sprintf("a %s timer", d), func() bool {
		for _, x := range c.timers {
			if x.d == d {
				at = x.at
				return true
			}
		}
		return false
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
	c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool {
		if x.at.After(at) {
			return false
		}
		x.ch <- at
		return true
	})
}

// sent is a signal the driver sent, on the signaling connection conn
// (1: the first).
type sent struct {
	conn int
	m    proto.Signal
}

// fakeSignaler plays the server and the other peer's signaling.
type fakeSignaler struct {
	mu        sync.Mutex
	conn      *fakeSigConn
	conns     int
	sent      []sent
	told      []proto.ClientMessage
	resumeErr []error // results of the next Resume calls (then success)
	resumeBad error   // if set, every Resume fails with it
	resumes   int
	pingErr   error // Ping fails with it and ends the connection
	changed   changes
}

type fakeSigConn struct {
	n    int
	in   chan proto.Signal
	done chan struct{}
	err  error
	once sync.Once
}

func newFakeSignaler() *fakeSignaler {
	f := &fakeSignaler{}
	f.connect()
	return f
}

func (f *fakeSignaler) connect() {
	f.conns++
	f.conn = &fakeSigConn{n: f.conns, in: make(chan proto.Signal, 256), done: make(chan struct{})}
}

func (c *fakeSigConn) end(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
	})
}

func (f *fakeSignaler) current() *fakeSigConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conn
}

func (f *fakeSignaler) Send(_ context.Context, m proto.Signal) error {
	c := f.current()
	select {
	case <-c.done:
		return c.err
	default:
	}
	f.mu.Lock()
	f.sent = append(f.sent, sent{c.n, m})
	f.mu.Unlock()
	f.changed.notify()
	return nil
}

func (f *fakeSignaler) Recv(ctx context.Context) (proto.Signal, error) {
	c := f.current()
	select {
	case m := <-c.in:
		return m, nil
	case <-c.done:
		return proto.Signal{}, c.err
	case <-ctx.Done():
		return proto.Signal{}, ctx.Err()
	}
}

func (f *fakeSignaler) Ping(context.Context) error {
	f.mu.Lock()
	err, c := f.pingErr, f.conn
	f.mu.Unlock()
	if err != nil {
		c.end(err)
	}
	return err
}

func (f *fakeSignaler) Resume(context.Context) ([]proto.ICEServer, error) {
	f.mu.Lock()
	defer f.changed.notify()
	defer f.mu.Unlock()
	f.resumes++
	if f.resumeBad != nil {
		return nil, f.resumeBad
	}
	if len(f.resumeErr) > 0 {
		err := f.resumeErr[0]
		f.resumeErr = f.resumeErr[1:]
		return nil, err
	}
	f.connect()
	return nil, nil
}

func (f *fakeSignaler) Tell(_ context.Context, m proto.ClientMessage) error {
	f.mu.Lock()
	f.told = append(f.told, m)
	f.mu.Unlock()
	f.changed.notify()
	return nil
}

func (f *fakeSignaler) KeepAlive(context.Context) error { return nil }

// deliver hands m to the driver as if the peer sent it.
func (f *fakeSignaler) deliver(m proto.Signal) { f.current().in <- m }

// drop ends the current signaling connection with err.
func (f *fakeSignaler) drop(err error) { f.current().end(err) }

// await waits for the first signal the driver sent that match accepts.
func (f *fakeSignaler) await(t *testing.T, what string, match func(sent) bool) sent {
	t.Helper()
	var got sent
	until(t, &f.changed, &f.mu, what, func() bool {
		for _, s := range f.sent {
			if match(s) {
				got = s
				return true
			}
		}
		return false
	})
	return got
}

// sdp waits for the sdp of type typ for generation gen.
func (f *fakeSignaler) sdp(t *testing.T, typ string, gen int) sent {
	t.Helper()
	return f.await(t, fmt.Sprintf("%s %d", typ, gen), func(s sent) bool {
		return s.m.T == proto.SigSDP && s.m.Type == typ && s.m.Gen == gen
	})
}

func (f *fakeSignaler) signals() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func (f *fakeSignaler) messages() []proto.ClientMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.told)
}

// fakeGen is a generation over a transfer.Pipe; the test opens and kills
// it and plays the other peer's end of the pipe.
type fakeGen struct {
	n                  int
	open, dead         chan struct{}
	openOnce, deadOnce sync.Once
	err                error
	us, them           transfer.Conn
	mu                 sync.Mutex
	remoteSDP          string
	cands              []proto.Signal
	stripes            []proto.Signal
	closed             bool
	changed            changes
	path               string // "" is direct
	carried            PathBytes
}

func newFakeGen(n int) *fakeGen {
	us, them := transfer.Pipe(1<<16, 16)
	return &fakeGen{n: n, open: make(chan struct{}), dead: make(chan struct{}), us: us, them: them}
}

func (g *fakeGen) Offer() (string, error) {
	return fmt.Sprintf("offer %d", g.n), nil
}

func (g *fakeGen) Answer(offer string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.remoteSDP = offer
	return fmt.Sprintf("answer %d", g.n), nil
}

func (g *fakeGen) SetAnswer(answer string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.remoteSDP = answer
	return nil
}

func (g *fakeGen) AddCandidate(m proto.Signal) {
	g.mu.Lock()
	g.cands = append(g.cands, m)
	g.mu.Unlock()
	g.changed.notify()
}

func (g *fakeGen) Stripe(m proto.Signal) {
	g.mu.Lock()
	g.stripes = append(g.stripes, m)
	g.mu.Unlock()
	g.changed.notify()
}

func (g *fakeGen) Stripes() int          { return 1 }
func (g *fakeGen) Open() <-chan struct{} { return g.open }
func (g *fakeGen) Dead() <-chan struct{} { return g.dead }
func (g *fakeGen) Err() error            { return g.err }
func (g *fakeGen) Conn() transfer.Conn   { return g.us }
func (g *fakeGen) Path() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.path == "" {
		return proto.PathDirect
	}
	return g.path
}

// PathBytes is what setCarried set (none: the driver falls back to Path).
func (g *fakeGen) PathBytes() PathBytes {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.carried
}

func (g *fakeGen) setCarried(b PathBytes) {
	g.mu.Lock()
	g.carried = b
	g.mu.Unlock()
}

// setPath moves the connection to another path, as ICE does when the
// controlling agent nominates another pair.
func (g *fakeGen) setPath(p string) {
	g.mu.Lock()
	g.path = p
	g.mu.Unlock()
}
func (g *fakeGen) PacketSize() uint32 { return 1191 }
func (g *fakeGen) Transport() string  { return TransportSCTP }

func (g *fakeGen) Close(err error) {
	g.kill(err)
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// up opens the data channel.
func (g *fakeGen) up() { g.openOnce.Do(func() { close(g.open) }) }

// kill ends the connection with err, as a failed ICE path does.
func (g *fakeGen) kill(err error) {
	g.deadOnce.Do(func() {
		g.err = err
		close(g.dead)
		g.us.Close()
	})
}

func (g *fakeGen) state() (remote string, cands []proto.Signal, closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.remoteSDP, slices.Clone(g.cands), g.closed
}

// errFakeEngine is what the fake engine returns when the peer sends "fail".
var errFakeEngine = errors.New("engine: failed")

// fakeEngine plays a transfer over a pipe end: it ends with nil when the
// other end sends "done", errFakeEngine on "fail", transfer.ErrConnLost
// when the pipe closes, and the context's error when cancelled. Like the
// real engine, it closes the connection when ctx ends.
func fakeEngine(ctx context.Context, c transfer.Conn) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for {
		b, err := c.Recv()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("%w: %v", transfer.ErrConnLost, err)
		}
		switch string(b) {
		case "done":
			return nil
		case "fail":
			return errFakeEngine
		}
	}
}
