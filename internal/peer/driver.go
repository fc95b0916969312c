package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/transfer"
)

const (
	// connectTimeout bounds one attempt to bring a generation up.
	connectTimeout = 30 * time.Second
	// DefaultReconnectFor is how long a peer keeps trying to reconnect
	// after losing the other side.
	DefaultReconnectFor = 10 * time.Minute
	// infoWait bounds how long the sender waits for the receiver's info
	// before its first offer; a peer that sends none is treated as a browser.
	infoWait = 5 * time.Second
	// probeTimeout bounds the check of the signaling connection after a
	// lost generation; the server answers a ping within a round trip.
	probeTimeout = 5 * time.Second
	// keepAliveEvery is how often a peer shows the server that it is still
	// there while the transfer runs and signaling is quiet: servers close
	// paired connections whose client sent nothing for
	// --signal-idle-timeout (2 h by default), and reconnecting needs this
	// connection.
	keepAliveEvery = 10 * time.Minute
	// lingerFor bounds how long a receiver that finished keeps the channel
	// up for the sender to read its "complete".
	lingerFor = 5 * time.Second
)

// signaler is the sealed signaling channel to the other peer, across the
// signaling connections of one resume session (sigclient in production).
// Its methods are safe for concurrent use.
type signaler interface {
	// Send seals and sends a signal on the current connection.
	Send(ctx context.Context, m proto.Signal) error
	// Recv returns the next signal of the current connection; an error
	// means that connection ended (sigclient.ErrCanceled: the peer canceled).
	Recv(ctx context.Context) (proto.Signal, error)
	// Ping checks that the current connection still answers, and ends it
	// if not.
	Ping(ctx context.Context) error
	// Resume makes one attempt to replace the ended connection with a new
	// one of the same session (handshake included) and returns the ICE
	// servers the server handed out.
	Resume(ctx context.Context) ([]proto.ICEServer, error)
	// Tell sends a message to the server itself (report, abort).
	Tell(ctx context.Context, m proto.ClientMessage) error
	// KeepAlive shows the server the connection is in use.
	KeepAlive(ctx context.Context) error
}

// generation is one connection to the other peer (a PeerConnection and
// its data channel in production). Signals go out through the function it
// was made with.
type generation interface {
	// Offer creates the data channel and returns the offer (sender).
	Offer() (string, error)
	// Answer applies an offer and returns the answer (receiver).
	Answer(offer string) (string, error)
	// SetAnswer applies the receiver's answer (sender).
	SetAnswer(answer string) error
	// AddCandidate adds a trickled remote candidate.
	AddCandidate(m proto.Signal)
	// Stripe takes the peer's description of one of the generation's
	// stripe connections (PROTOCOL §3.4).
	Stripe(m proto.Signal)
	// Open is closed when the data channel is open; Dead when the
	// generation ended, for the reason Err gives.
	Open() <-chan struct{}
	Dead() <-chan struct{}
	Err() error
	// Conn is the open data channel.
	Conn() transfer.Conn
	// Path is proto.PathDirect or proto.PathRelay; PacketSize the size of
	// the packets this side sends; Transport TransportQUIC or TransportSCTP.
	Path() string
	// PathBytes is what the generation carried over each kind of path
	// (the transfer reports the one that carried most, PROTOCOL §2.5).
	PathBytes() PathBytes
	PacketSize() uint32
	// Stripes is how many of its connections carried chunks (1: only the
	// main one; PROTOCOL §3.4).
	Stripes() int
	Transport() string
	// Close ends the generation (Err: err, unless it had died already)
	// and returns when its goroutines have ended.
	Close(err error)
}

// PathBytes counts the bytes connections carried over direct and over
// relayed candidate pairs.
type PathBytes struct{ Direct, Relay uint64 }

func (b *PathBytes) add(o PathBytes) {
	b.Direct += o.Direct
	b.Relay += o.Relay
}

// most is the path that carried most of the bytes, "" before any moved.
func (b PathBytes) most() string {
	switch {
	case b.Direct+b.Relay == 0:
		return ""
	case b.Relay > b.Direct:
		return proto.PathRelay
	default:
		return proto.PathDirect
	}
}

// newGenFunc makes generation n; its candidates go out through signal.
type newGenFunc func(n int, ice []proto.ICEServer, goPeer bool, signal func(proto.Signal)) (generation, error)

// clock is the time the driver waits on (a fake one in tests).
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

type timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

// role is what Send and Receive plug into the driver.
type role interface {
	// offers: the sender builds every generation and offers it; the
	// receiver answers the sender's offers.
	offers() bool
	// start runs once signaling is up, before the first generation.
	start(ctx context.Context, d *driver)
	// run moves the transfer over one generation's connection.
	run(ctx context.Context, c transfer.Conn) error
	// ended decides what the end of a generation's run means: the end of
	// the transfer (done, with its error), or a lost connection.
	ended(ctx context.Context, d *driver, g generation, err error) (done bool, result error)
	// failed sees a fatal error before a generation opened, gaveUp the
	// end of the reconnect window; both return what Run returns.
	failed(d *driver, err error) error
	gaveUp(d *driver, err error) error
	// lost runs when a generation is lost (or never opened) and the
	// driver is about to build the next.
	lost(d *driver)
}

// sigEvent is what the signaling goroutine tells the driver: a signal, or
// a change of the signaling connection.
type sigEvent struct {
	kind int
	m    proto.Signal
	err  error
	ice  []proto.ICEServer
}

const (
	evSignal = iota
	evDown   // the connection ended (err)
	evUp     // resumed on a new connection (ice)
	evLost   // resuming was given up (err)
)

// driver runs connection generations for one role, reconnecting signaling
// and building new generations when a connection is lost, until the
// transfer ends or the reconnect window has passed. Run owns every
// goroutine the driver starts. Its state belongs to the goroutine in Run;
// only the peer's features are read elsewhere (by pion, for packet sizes).
type driver struct {
	sig          signaler
	newGen       newGenFunc
	clock        clock
	log          *slog.Logger
	events       Events
	role         role
	reconnectFor time.Duration
	ice          []proto.ICEServer
	res          *Result
	// auditNames and names go into the report (names only if auditNames).
	auditNames bool
	names      []string

	wg     sync.WaitGroup
	life   context.Context // cancelled when Run returns
	in     chan sigEvent
	noMore chan struct{} // closed: the transfer is over, do not resume signaling
	stopOn sync.Once

	features struct {
		sync.Mutex
		list []string
	}
	// left is what the sender has left to send (nil: the receiver).
	left *atomic.Int64
	// quic: this side announces FeatureQUIC; prepare, if set, runs on an
	// open generation before the transfer (QUIC setup), on the run's
	// goroutine.
	quic    bool
	prepare func(ctx context.Context, g generation)

	sigUp     bool
	sigLost   error
	byeSeen   bool
	byeReason string
	gotInfo   bool
	// cur is the current generation, number curN; opened the number of
	// the last that opened.
	cur          generation
	curN, opened int
	// early holds candidates that arrived before their generation's offer
	// (receiver); offer is the newest offer not yet answered.
	early map[int][]proto.Signal
	offer *proto.Signal
	// cancelRun ends the run of the current generation (nil between runs).
	cancelRun context.CancelCauseFunc
}

func newDriver(sig signaler, newGen newGenFunc, clk clock, log *slog.Logger, r role, reconnectFor time.Duration) *driver {
	if reconnectFor <= 0 {
		reconnectFor = DefaultReconnectFor
	}
	return &driver{
		sig: sig, newGen: newGen, clock: clk, log: log, role: r, reconnectFor: reconnectFor,
		res: &Result{}, in: make(chan sigEvent, 64), noMore: make(chan struct{}),
		early: map[int][]proto.Signal{},
	}
}

// spawn runs f in a goroutine that Run waits for.
func (d *driver) spawn(f func()) {
	d.wg.Go(f)
}

// Run drives the transfer on an established signaling connection. It
// returns when the transfer has ended and every goroutine it started has
// ended too.
func (d *driver) Run(ctx context.Context) error {
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	d.life = life
	defer func() {
		if d.cur != nil {
			d.retire(d.cur, errConnClosed)
			d.cur = nil
		}
		end()
		d.wg.Wait()
	}()
	d.sigUp = true
	d.spawn(d.signaling)
	d.announce()
	d.role.start(ctx, d)
	return d.loop(ctx)
}

func (d *driver) loop(ctx context.Context) error {
	var lostAt time.Time
	var lastErr error
	giveUp := func() error {
		return d.role.gaveUp(d, fmt.Errorf("%w (gave up after %s): %v", ErrSessionLost, d.reconnectFor, lastErr))
	}
	for {
		if !lostAt.IsZero() && d.clock.Now().Sub(lostAt) > d.reconnectFor {
			return giveUp()
		}
		if err := ctx.Err(); err != nil {
			d.cancel()
			return err
		}
		if err := d.awaitSignaling(ctx, lostAt, giveUp); err != nil {
			if ctx.Err() != nil {
				d.cancel()
			}
			return err
		}
		g, err := d.connect(ctx)
		if err != nil {
			if fatal(err) || d.byeSeen {
				err = d.role.failed(d, err) // reports first: an abort ends the connection
				if ctx.Err() != nil {
					d.cancel()
				}
				return err
			}
			lastErr = err
			if lostAt.IsZero() {
				lostAt = d.clock.Now()
			}
			d.reconnecting(ctx, err)
			continue
		}
		d.res.Path, d.res.PacketSize = g.Path(), g.PacketSize()
		if f := d.events.Connected; f != nil {
			f(d.res.Path, d.curN)
		}
		runErr := d.runGeneration(ctx, g)
		d.res.Stripes = max(d.res.Stripes, g.Stripes())
		// QUIC is decided, and its packets sized, during the run (a closed
		// SCTP association no longer says its packet size).
		d.res.Transport = g.Transport()
		// The path too: the one that carried most of the bytes so far (a
		// controlling browser may nominate a relayed pair first and a
		// direct one moments later; a direct generation's stripes may be
		// relayed).
		d.res.Carried.add(g.PathBytes())
		if p := d.res.Carried.most(); p != "" {
			d.res.Path = p
		} else if p := g.Path(); p != "" {
			d.res.Path = p
		}
		if n := g.PacketSize(); n != 0 {
			d.res.PacketSize = n
		}
		done, err := d.role.ended(ctx, d, g, runErr)
		if done {
			return err
		}
		d.drop()
		lastErr, lostAt = err, d.clock.Now()
		d.reconnecting(ctx, err)
	}
}

// fatal reports errors that reconnecting cannot fix.
func fatal(err error) bool {
	return errors.Is(err, ErrPeerLeft) || errors.Is(err, transfer.ErrCanceled) ||
		errors.Is(err, ErrSessionLost) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// reconnecting reports a lost generation and checks that signaling still
// works: a lost path often means the network changed (a new public
// address, another uplink), which leaves the WebSocket hanging without an
// error for many minutes (the client never pings, the server's pings and
// close go to the old address), and the next offer would go nowhere. A
// connection that does not answer a ping is ended, and the signaling
// goroutine resumes the session on a new one (PROTOCOL §2.4). The ping
// comes first so that the next generation is offered on a connection that
// answers.
func (d *driver) reconnecting(ctx context.Context, err error) {
	d.log.Info("connection lost; reconnecting", "err", err)
	if f := d.events.Reconnecting; f != nil {
		f(err)
	}
	if d.sigUp {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		if err := d.sig.Ping(pctx); err != nil && ctx.Err() == nil {
			d.log.Info("signaling connection is down; resuming the session", "err", err)
			d.sigUp = false // the signaling goroutine reports it too
		}
	}
	d.role.lost(d)
}

// awaitSignaling waits until signaling is up, at most until the reconnect
// window that began at lostAt ends (then it returns giveUp()).
func (d *driver) awaitSignaling(ctx context.Context, lostAt time.Time, giveUp func() error) error {
	var deadline <-chan time.Time
	for !d.sigUp {
		if d.byeSeen {
			return byeErr(d.byeReason)
		}
		if d.sigLost != nil {
			return d.sigLost
		}
		if deadline == nil && !lostAt.IsZero() {
			t := d.clock.NewTimer(max(lostAt.Add(d.reconnectFor).Sub(d.clock.Now()), 0))
			defer t.Stop()
			deadline = t.C()
		}
		select {
		case ev := <-d.in:
			d.route(ev)
		case <-deadline:
			return giveUp()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// connect brings the next generation up: the sender offers it, the
// receiver answers the sender's newest offer; then both wait for the data
// channel.
func (d *driver) connect(ctx context.Context) (generation, error) {
	if d.role.offers() {
		d.res.Generations++
		g, err := d.makeGeneration(d.curN + 1)
		if err != nil {
			return nil, err
		}
		sdp, err := g.Offer()
		if err != nil {
			d.drop()
			return nil, err
		}
		d.signal(proto.Signal{T: proto.SigSDP, Type: "offer", SDP: sdp, Gen: d.curN})
	}
	t := d.clock.NewTimer(connectTimeout)
	defer t.Stop()
	for {
		if d.byeSeen {
			d.drop()
			return nil, byeErr(d.byeReason)
		}
		if !d.sigUp {
			d.drop()
			return nil, errSignalingDown
		}
		if m := d.offer; m != nil {
			d.offer = nil
			if err := d.answer(m); err != nil {
				return nil, err
			}
		}
		select {
		case <-openOf(d.cur):
			if !d.role.offers() {
				d.res.Generations++
			}
			d.opened = d.curN
			return d.cur, nil
		case <-deadOf(d.cur):
			err := d.cur.Err()
			d.drop()
			return nil, err
		case ev := <-d.in:
			d.route(ev)
		case <-t.C():
			d.drop()
			return nil, fmt.Errorf("%w: no connection within %s", errConnFailed, connectTimeout)
		case <-ctx.Done():
			d.drop()
			return nil, ctx.Err()
		}
	}
}

// answer makes the generation m offers and answers it (receiver).
func (d *driver) answer(m *proto.Signal) error {
	g, err := d.makeGeneration(m.Gen)
	if err != nil {
		return err
	}
	sdp, err := g.Answer(m.SDP)
	if err != nil {
		d.drop()
		return fmt.Errorf("bad offer: %w", err)
	}
	d.signal(proto.Signal{T: proto.SigSDP, Type: "answer", SDP: sdp, Gen: m.Gen})
	return nil
}

func openOf(g generation) <-chan struct{} {
	if g == nil {
		return nil
	}
	return g.Open()
}

func deadOf(g generation) <-chan struct{} {
	if g == nil {
		return nil
	}
	return g.Dead()
}

// makeGeneration makes generation n the current one, with the candidates
// that arrived for it early.
func (d *driver) makeGeneration(n int) (generation, error) {
	d.drop()
	g, err := d.newGen(n, d.ice, d.peerIsGo(), d.signal)
	if err != nil {
		return nil, err
	}
	d.cur, d.curN = g, n
	early := d.early[n]
	for k := range d.early {
		if k <= n {
			delete(d.early, k)
		}
	}
	for _, c := range early {
		g.AddCandidate(c)
	}
	return g, nil
}

// drop ends the current generation.
func (d *driver) drop() {
	if d.cur != nil {
		d.retire(d.cur, errConnClosed)
		d.cur = nil
	}
}

// retire ends g without waiting here: closing a PeerConnection takes a
// while, and signals keep arriving meanwhile.
func (d *driver) retire(g generation, err error) {
	d.spawn(func() { g.Close(err) })
}

// runGeneration runs the role's transfer on g until it returns, ending it
// early when the peer asks for a new generation or leaves.
func (d *driver) runGeneration(ctx context.Context, g generation) error {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	d.spawn(func() {
		if d.prepare != nil {
			d.prepare(rctx, g)
		}
		done <- d.role.run(rctx, g.Conn())
	})
	d.cancelRun = cancel
	defer func() { d.cancelRun = nil }()
	if d.byeSeen {
		d.byeDuringRun()
	}
	for {
		select {
		case err := <-done:
			if cause := context.Cause(rctx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return err
		case ev := <-d.in:
			d.route(ev)
		}
	}
}

// byeDuringRun ends the run unless the peer finished: then the transfer's
// own completion decides.
func (d *driver) byeDuringRun() {
	if err := byeErr(d.byeReason); !errors.Is(err, errPeerDone) {
		d.cancelRun(err)
	}
}

// linger keeps g up after the transfer finished, until the peer closes
// it, says goodbye, or lingerFor has passed. Detached channels report the
// close only to a reader, so something keeps reading.
func (d *driver) linger(ctx context.Context, g generation) {
	c := g.Conn()
	d.spawn(func() {
		for {
			if _, err := c.Recv(); err != nil {
				return
			}
		}
	})
	d.wait(ctx, lingerFor, func() bool { return d.byeSeen }, g.Dead())
}

// waitInfo waits until the peer said who it is (PROTOCOL §3.4: the sender
// offers after info), which decides chunk and packet sizes: a connection
// set up without it would move 64 KiB messages between two Go peers.
func (d *driver) waitInfo(ctx context.Context) {
	if !d.wait(ctx, infoWait, func() bool { return d.gotInfo || d.byeSeen }, nil) {
		d.log.Debug("no info from the peer; assuming a browser")
	}
}

// wait routes signals until cond holds, end is closed or ctx ends; it
// returns false if dur passed first.
func (d *driver) wait(ctx context.Context, dur time.Duration, cond func() bool, end <-chan struct{}) bool {
	t := d.clock.NewTimer(dur)
	defer t.Stop()
	for !cond() {
		select {
		case ev := <-d.in:
			d.route(ev)
		case <-end:
			return true
		case <-ctx.Done():
			return true
		case <-t.C():
			return false
		}
	}
	return true
}

// route applies what the signaling goroutine reported.
func (d *driver) route(ev sigEvent) {
	switch ev.kind {
	case evDown:
		d.sigUp = false
		if errors.Is(ev.err, sigclient.ErrCanceled) {
			d.gotBye(byeCanceled)
		}
		return
	case evUp:
		d.sigUp = true
		if len(ev.ice) > 0 {
			d.ice = ev.ice
		}
		d.announce()
		return
	case evLost:
		d.sigLost = ev.err
		return
	}
	m := ev.m
	switch m.T {
	case proto.SigInfo:
		d.features.Lock()
		d.features.list = m.Features
		d.features.Unlock()
		d.gotInfo = true
	case proto.SigSDP:
		switch {
		case m.Stripe != 0:
			// A stripe of the current generation (PROTOCOL §3.4), never a
			// generation of its own.
			if d.cur != nil && m.Gen == d.curN {
				d.cur.Stripe(m)
			}
		case m.Type == "offer" && !d.role.offers() && m.Gen > d.curN && (d.offer == nil || m.Gen > d.offer.Gen):
			d.offer = &m
			// The sender offers a newer generation only once it gave the
			// current one up: end ours now, not when we notice (up to 4 s
			// without traffic), so that the transfer resumes at once.
			if d.cancelRun != nil && d.cur != nil {
				d.retire(d.cur, errSenderMovedOn)
			}
		case m.Type == "answer" && d.role.offers() && d.cur != nil && m.Gen == d.curN:
			if err := d.cur.SetAnswer(m.SDP); err != nil {
				d.retire(d.cur, fmt.Errorf("bad answer: %w", err))
			}
		}
	case proto.SigCand:
		switch {
		case d.cur != nil && m.Gen == d.curN:
			d.cur.AddCandidate(m)
		case !d.role.offers() && m.Gen > d.curN && (d.early[m.Gen] != nil || len(d.early) < 8) && len(d.early[m.Gen]) < 64:
			d.early[m.Gen] = append(d.early[m.Gen], m)
		}
	case proto.SigRestart:
		// Only a running generation is given up for a restart: while one
		// is being built, it is the one the receiver asks for.
		if d.role.offers() && d.cancelRun != nil && (m.Gen == 0 || m.Gen >= d.curN) {
			d.retire(d.cur, errors.New("peer: the other side asked to reconnect"))
		}
	case proto.SigBye:
		d.gotBye(m.Reason)
	}
}

func (d *driver) gotBye(reason string) {
	if d.byeSeen {
		return
	}
	d.byeSeen, d.byeReason = true, reason
	if d.cancelRun != nil {
		d.byeDuringRun()
	}
}

// stripesFor is how many connections a generation of the sender stripes
// over, on a path with round trip time rtt (PROTOCOL §3.4): browsers
// only, and only a peer that announced stripes.
func (d *driver) stripesFor(o Options, goPeer bool) func(rtt time.Duration) int {
	return func(rtt time.Duration) int {
		if d.left == nil {
			return 1
		}
		if o.stripes > 0 {
			return o.stripes
		}
		d.features.Lock()
		ok := slices.Contains(d.features.list, proto.FeatureStripes)
		d.features.Unlock()
		if goPeer || !ok {
			return 1
		}
		return proto.StripeCount(rtt, d.left.Load())
	}

}

// peerQUIC: the peer announced FeatureQUIC.
func (d *driver) peerQUIC() bool {
	d.features.Lock()
	defer d.features.Unlock()
	return slices.Contains(d.features.list, proto.FeatureQUIC)
}

func (d *driver) peerIsGo() bool {
	d.features.Lock()
	defer d.features.Unlock()
	return slices.Contains(d.features.list, proto.FeatureZeroChecksum)
}

// peerPacketLimit is the largest SCTP packet the peer reads, by the
// features it announced (0: pion's default only).
func (d *driver) peerPacketLimit() uint32 {
	d.features.Lock()
	defer d.features.Unlock()
	switch {
	case slices.Contains(d.features.list, proto.FeatureJumboPackets):
		return maxSCTPMTU
	case slices.Contains(d.features.list, proto.FeatureLargePackets):
		return largeSCTPMTU
	}
	return 0
}

// announce tells the peer who we are: the first signal on every signaling
// connection.
func (d *driver) announce() {
	features := []string{proto.FeatureResume, proto.FeatureZeroChecksum, proto.FeatureLargePackets, proto.FeatureJumboPackets, proto.FeatureStripes}
	if d.quic {
		features = append(features, proto.FeatureQUIC)
	}
	d.signal(proto.Signal{T: proto.SigInfo, Agent: Agent, Features: features})
}

// signal sends a sealed signal; a failure only means the connection is
// down, which the signaling goroutine notices.
func (d *driver) signal(m proto.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.sig.Send(ctx, m); err != nil {
		d.log.Debug("signal not sent", "t", m.T, "err", err)
	}
}

// report tells the server how the transfer went (best effort).
func (d *driver) report(bytes int64, outcome string, files int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := proto.ClientMessage{Type: proto.MsgReport, Path: d.res.Path, Bytes: bytes, Outcome: outcome, Files: files}
	if d.auditNames {
		m.Names = capNames(d.names)
	}
	_ = d.sig.Tell(ctx, m)
}

// cancel tells the other side we are leaving for good.
func (d *driver) cancel() {
	d.signal(proto.Signal{T: proto.SigBye, Reason: byeCanceled})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.sig.Tell(ctx, proto.ClientMessage{Type: proto.MsgAbort, Reason: proto.AbortCanceled})
}

// finish stops resuming signaling: the transfer is over.
func (d *driver) finish() {
	d.stopOn.Do(func() { close(d.noMore) })
}

// signaling reads signals and hands them to Run, resuming the session on
// a new connection whenever one ends, so that a peer that comes back (a
// restarted receiver, a network that recovers) finds us there without
// waiting for ICE timeouts.
func (d *driver) signaling() {
	sawBye := false
	for {
		err, bye := d.pump()
		sawBye = sawBye || bye
		if d.life.Err() != nil {
			return
		}
		d.post(sigEvent{kind: evDown, err: err})
		select {
		case <-d.noMore:
			return
		default:
		}
		if sawBye || errors.Is(err, sigclient.ErrCanceled) {
			return // the peer is gone for good: nobody to resume with
		}
		ice, err := resume(d.life, d.sig, d.clock, d.log)
		if err != nil {
			if d.life.Err() == nil {
				d.post(sigEvent{kind: evLost, err: err})
			}
			return
		}
		d.post(sigEvent{kind: evUp, ice: ice})
	}
}

// pump hands the current connection's signals to Run until it ends,
// keeping it alive meanwhile; bye: the peer said goodbye on it.
func (d *driver) pump() (err error, bye bool) {
	ctx, stop := context.WithCancel(d.life)
	var wg sync.WaitGroup
	wg.Go(func() { d.keepAlive(ctx) })
	defer func() {
		stop()
		wg.Wait()
	}()
	for {
		m, err := d.sig.Recv(d.life)
		if err != nil {
			d.log.Debug("signaling ended", "err", err)
			return err, bye
		}
		bye = bye || m.T == proto.SigBye
		d.post(sigEvent{kind: evSignal, m: m})
	}
}

func (d *driver) post(ev sigEvent) {
	select {
	case d.in <- ev:
	case <-d.life.Done():
	}
}

// keepAlive asks the server for ICE servers every keepAliveEvery until ctx
// ends.
func (d *driver) keepAlive(ctx context.Context) {
	for {
		t := d.clock.NewTimer(keepAliveEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		kctx, cancel := context.WithTimeout(ctx, probeTimeout)
		if err := d.sig.KeepAlive(kctx); err != nil {
			d.log.Debug("keepalive not answered", "err", err)
		}
		cancel()
	}
}

// resume reconnects signaling with the session id and runs the handshake
// again with the session secret; it retries with backoff until ctx ends
// or the server no longer knows the session.
func resume(ctx context.Context, sig signaler, clk clock, log *slog.Logger) ([]proto.ICEServer, error) {
	delay := 500 * time.Millisecond
	for {
		ice, err := sig.Resume(ctx)
		if err == nil {
			return ice, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, sigclient.ErrUnknown) || errors.Is(err, sigclient.ErrWrongKey) ||
			errors.Is(err, sigclient.ErrCanceled) || errors.Is(err, sigclient.ErrVersion) {
			return nil, fmt.Errorf("%w: %w", ErrSessionLost, err)
		}
		log.Debug("resume failed, retrying", "err", err, "in", delay)
		t := clk.NewTimer(delay)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		delay = min(2*delay, 5*time.Second)
	}
}
