package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/transfer"
	"go.uber.org/goleak"
)

// harness runs a driver over the fakes and checks, when the test ends,
// that every goroutine it started has ended.
type harness struct {
	t      *testing.T
	d      *driver
	sig    *fakeSignaler
	clk    *fakeClock
	gens   chan *fakeGen
	cancel context.CancelFunc
	done   chan error

	mu           sync.Mutex
	reconnecting []error
	connected    []int
	changed      changes
}

// running waits until generation n is connected and its transfer runs.
func (h *harness) running(n int) {
	h.t.Helper()
	until(h.t, &h.changed, &h.mu, fmt.Sprintf("generation %d connected", n), func() bool {
		return slices.Contains(h.connected, n)
	})
}

func startDriver(t *testing.T, r role, reconnectFor time.Duration) *harness {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	h := &harness{t: t, sig: newFakeSignaler(), clk: newFakeClock(), gens: make(chan *fakeGen, 64), done: make(chan error, 1)}
	newGen := func(n int, _ []proto.ICEServer, _ bool, _ func(proto.Signal)) (generation, error) {
		g := newFakeGen(n)
		h.gens <- g
		return g, nil
	}
	h.d = newDriver(h.sig, newGen, h.clk, slog.New(slog.DiscardHandler), r, reconnectFor)
	h.d.events = Events{
		Reconnecting: func(err error) { h.mu.Lock(); h.reconnecting = append(h.reconnecting, err); h.mu.Unlock() },
		Connected: func(_ string, gen int) {
			h.mu.Lock()
			h.connected = append(h.connected, gen)
			h.mu.Unlock()
			h.changed.notify()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(waitBound):
			t.Error("the driver did not return")
		}
	})
	return h
}

func startSender(t *testing.T, reconnectFor time.Duration) *harness {
	t.Helper()
	return startDriver(t, &sendRole{sender: &transfer.Sender{}, engine: fakeEngine}, reconnectFor)
}

// fakeEngineRole is a role with the fake engine in place of the transfer
// engine.
type fakeEngineRole struct{ role }

func (fakeEngineRole) run(ctx context.Context, c transfer.Conn) error { return fakeEngine(ctx, c) }

func startReceiver(t *testing.T, reconnectFor time.Duration) *harness {
	t.Helper()
	dir := t.TempDir()
	return startDriver(t, fakeEngineRole{&receiveRole{recv: &transfer.Receiver{Dir: dir}, dir: dir, ticketID: "AAAAAAAAAAAA"}}, reconnectFor)
}

// infoSender is a sender that heard the receiver's info.
func infoSender(t *testing.T, reconnectFor time.Duration) *harness {
	t.Helper()
	h := startSender(t, reconnectFor)
	h.sig.deliver(goInfo())
	return h
}

// succeeded checks that Run returned no error.
func (h *harness) succeeded() {
	h.t.Helper()
	if err := h.result(); err != nil {
		h.t.Fatalf("Run: %v", err)
	}
}

// result waits for Run to return.
func (h *harness) result() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(waitBound):
		h.t.Fatal("the driver did not return")
		return nil
	}
}

// gen returns the next generation the driver made.
func (h *harness) gen() *fakeGen {
	h.t.Helper()
	select {
	case g := <-h.gens:
		return g
	case <-time.After(waitBound):
		h.t.Fatal("no new generation")
		return nil
	}
}

// genN returns generation n, skipping older ones the driver made.
func (h *harness) genN(n int) *fakeGen {
	h.t.Helper()
	for {
		if g := h.gen(); g.n == n {
			return g
		}
	}
}

// noGen checks that the driver made no generation since the last gen.
func (h *harness) noGen() {
	h.t.Helper()
	select {
	case g := <-h.gens:
		h.t.Fatalf("unexpected generation %d", g.n)
	default:
	}
}

func goInfo() proto.Signal {
	return proto.Signal{T: proto.SigInfo, Agent: Agent, Features: []string{proto.FeatureResume, proto.FeatureZeroChecksum}}
}

func sdp(typ string, gen int) proto.Signal {
	return proto.Signal{T: proto.SigSDP, Type: typ, SDP: typ, Gen: gen}
}

func cand(gen int, c string) proto.Signal {
	return proto.Signal{T: proto.SigCand, Candidate: &c, Gen: gen}
}

// connectSender brings the sender's generation n up.
func (h *harness) connectSender(n int) *fakeGen {
	h.t.Helper()
	g := h.genN(n)
	h.sig.sdp(h.t, "offer", n)
	h.sig.deliver(sdp("answer", n))
	g.up()
	h.running(n)
	return g
}

// connectReceiver offers generation n to the receiver and brings it up.
func (h *harness) connectReceiver(n int) *fakeGen {
	h.t.Helper()
	h.sig.deliver(sdp("offer", n))
	g := h.genN(n)
	h.sig.sdp(h.t, "answer", n)
	g.up()
	h.running(n)
	return g
}

func (h *harness) told(typ, outcome string) bool {
	for _, m := range h.sig.messages() {
		if m.Type == typ && (outcome == "" || m.Outcome == outcome || m.Reason == outcome) {
			return true
		}
	}
	return false
}

func (h *harness) sentBye(reason string) bool {
	for _, s := range h.sig.signals() {
		if s.m.T == proto.SigBye && s.m.Reason == reason {
			return true
		}
	}
	return false
}

func finish(t *testing.T, g *fakeGen) {
	t.Helper()
	if err := g.them.Send([]byte("done")); err != nil {
		t.Fatal(err)
	}
}

// A dead connection makes the sender build and offer the next generation;
// the transfer ends on it.
func TestDriverSenderRestartsAfterDeadConnection(t *testing.T) {
	h := infoSender(t, 0)
	g1 := h.connectSender(1)
	g1.kill(errConnFailed)
	g2 := h.connectSender(2)
	finish(t, g2)
	h.succeeded()
	if _, _, closed := g1.state(); !closed {
		t.Error("the dead generation was not closed")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reconnecting) != 1 || !errors.Is(h.reconnecting[0], transfer.ErrConnLost) || len(h.connected) != 2 || h.connected[1] != 2 {
		t.Errorf("reconnecting %v, connected %v", h.reconnecting, h.connected)
	}
	if h.d.res.Generations != 2 || !h.sentBye(byeDone) || !h.told(proto.MsgReport, proto.OutcomeCompleted) {
		t.Errorf("generations %d, signals %v, messages %v", h.d.res.Generations, h.sig.signals(), h.sig.messages())
	}
}

// The path a transfer reports is the one its connection ended on: a
// controlling browser nominates whichever pair works first (a relayed one,
// under load) and moves to a direct one moments later, and a report of
// "relay" for a transfer that ran direct misleads the user and the
// operator's audit.
func TestDriverReportsPathAtEnd(t *testing.T) {
	h := infoSender(t, 0)
	g := h.genN(1)
	g.setPath(proto.PathRelay)
	h.sig.sdp(h.t, "offer", 1)
	h.sig.deliver(sdp("answer", 1))
	g.up()
	h.running(1)
	g.setPath(proto.PathDirect)
	finish(t, g)
	h.succeeded()
	if h.d.res.Path != proto.PathDirect {
		t.Errorf("result's path %q, want %q", h.d.res.Path, proto.PathDirect)
	}
	var reported []string
	for _, m := range h.sig.messages() {
		if m.Type == proto.MsgReport {
			reported = append(reported, m.Path)
		}
	}
	if len(reported) != 1 || reported[0] != proto.PathDirect {
		t.Errorf("reported paths %q, want [%q]", reported, proto.PathDirect)
	}
}

// The report names the path that carried most of the transfer's bytes
// over all its generations (PROTOCOL §2.5), not the last one's.
func TestDriverReportsPathOfMostBytes(t *testing.T) {
	h := infoSender(t, 0)
	g1 := h.connectSender(1)
	g1.setPath(proto.PathDirect)
	g1.setCarried(PathBytes{Direct: 1 << 20, Relay: 10 << 20})
	g1.kill(errConnFailed)
	g2 := h.connectSender(2)
	g2.setPath(proto.PathDirect)
	g2.setCarried(PathBytes{Direct: 2 << 20})
	finish(t, g2)
	h.succeeded()
	want := PathBytes{Direct: 3 << 20, Relay: 10 << 20}
	if h.d.res.Path != proto.PathRelay || h.d.res.Carried != want {
		t.Errorf("result's path %q, carried %+v; want %q, %+v", h.d.res.Path, h.d.res.Carried, proto.PathRelay, want)
	}
	for _, m := range h.sig.messages() {
		if m.Type == proto.MsgReport && m.Path != proto.PathRelay {
			t.Errorf("reported path %q, want %q", m.Path, proto.PathRelay)
		}
	}
}

// A receiver that loses its connection asks the sender for a new one with
// the generation it lost, answers the next offer, and after the transfer
// keeps the channel until the sender says goodbye.
func TestDriverReceiverAsksForRestart(t *testing.T) {
	h := startReceiver(t, 0)
	g1 := h.connectReceiver(1)
	g1.kill(errConnFailed)
	h.sig.await(t, "restart 1", func(s sent) bool { return s.m.T == proto.SigRestart && s.m.Gen == 1 })
	g2 := h.connectReceiver(2)
	finish(t, g2)
	select {
	case err := <-h.done:
		t.Fatalf("Run returned (%v) before the sender left", err)
	default:
	}
	h.sig.deliver(proto.Signal{T: proto.SigBye, Reason: byeDone})
	h.succeeded()
	if h.d.res.Generations != 2 {
		t.Errorf("generations %d, want 2", h.d.res.Generations)
	}
}

// A receiver whose generation still runs when the sender offers the next
// one (the sender gave it up first) ends it at once and answers, instead
// of waiting until it notices the loss itself.
func TestDriverReceiverTakesNewerOffer(t *testing.T) {
	h := startReceiver(t, 0)
	g1 := h.connectReceiver(1)
	g2 := h.connectReceiver(2)
	select {
	case <-g1.Dead():
		if !errors.Is(g1.Err(), errSenderMovedOn) {
			t.Errorf("generation 1 ended with %v, want %v", g1.Err(), errSenderMovedOn)
		}
	default:
		t.Fatal("generation 1 still runs after generation 2 connected")
	}
	finish(t, g2)
	h.sig.deliver(proto.Signal{T: proto.SigBye, Reason: byeDone})
	h.succeeded()
	if h.d.res.Generations != 2 {
		t.Errorf("generations %d, want 2", h.d.res.Generations)
	}
}

// A receiver that finished leaves by itself when the sender neither
// closes nor says goodbye.
func TestDriverReceiverLingerBounded(t *testing.T) {
	h := startReceiver(t, 0)
	finish(t, h.connectReceiver(1))
	h.clk.fire(t, lingerFor)
	h.succeeded()
}

// After a network change the signaling connection hangs: the ping after
// the lost generation ends it, the driver resumes the session on a new
// connection (retrying after a failed attempt), announces itself there
// and offers the next generation on it.
func TestDriverResumesSignalingAfterNewAddress(t *testing.T) {
	h := infoSender(t, 0)
	g1 := h.connectSender(1)
	h.sig.mu.Lock()
	h.sig.pingErr = errors.New("the server did not answer a ping")
	h.sig.resumeErr = []error{errors.New("dial: network is unreachable")}
	h.sig.mu.Unlock()
	g1.kill(errConnFailed)
	h.clk.fire(t, 500*time.Millisecond) // the retry after the failed resume
	offer := h.sig.await(t, "an offer on the new connection", func(s sent) bool {
		return s.conn == 2 && s.m.T == proto.SigSDP && s.m.Type == "offer"
	})
	info := h.sig.await(t, "info on the new connection", func(s sent) bool { return s.conn == 2 && s.m.T == proto.SigInfo })
	if sigs := h.sig.signals(); indexOf(sigs, info) > indexOf(sigs, offer) {
		t.Errorf("offer before info on the new connection: %v", sigs)
	}
	g := h.genN(offer.m.Gen)
	h.sig.deliver(sdp("answer", offer.m.Gen))
	g.up()
	finish(t, g)
	h.succeeded()
	h.sig.mu.Lock()
	defer h.sig.mu.Unlock()
	if h.sig.resumes != 2 || h.sig.conns != 2 {
		t.Errorf("%d resume attempts, %d connections; want 2, 2", h.sig.resumes, h.sig.conns)
	}
}

func indexOf(sigs []sent, s sent) int {
	for i, x := range sigs {
		if x.conn == s.conn && x.m.T == s.m.T && x.m.Type == s.m.Type && x.m.Gen == s.m.Gen {
			return i
		}
	}
	return -1
}

// A bye while a generation is being built ends the transfer with what the
// bye means, for both roles, and closes the half-built generation.
func TestDriverByeDuringConnect(t *testing.T) {
	for _, c := range []struct {
		name, reason string
		want         error
	}{
		{"canceled", byeCanceled, transfer.ErrCanceled},
		{"error", byeError, ErrPeerLeft},
		{"declined", byeDeclined, transfer.ErrDeclined},
		{"done", byeDone, errPeerDone},
	} {
		// bye arrives while g is being built.
		bye := func(t *testing.T, h *harness, g *fakeGen) {
			h.sig.deliver(proto.Signal{T: proto.SigBye, Reason: c.reason})
			if err := h.result(); !errors.Is(err, c.want) {
				t.Fatalf("Run: %v, want %v", err, c.want)
			}
			if _, _, closed := g.state(); !closed {
				t.Error("the generation was not closed")
			}
		}
		t.Run("sender/"+c.name, func(t *testing.T) {
			h := infoSender(t, 0)
			g := h.genN(1)
			h.sig.sdp(t, "offer", 1)
			bye(t, h, g)
			if !h.told(proto.MsgReport, "") {
				t.Error("no report")
			}
		})
		t.Run("receiver/"+c.name, func(t *testing.T) {
			h := startReceiver(t, 0)
			h.sig.deliver(sdp("offer", 1))
			g := h.genN(1)
			h.sig.sdp(t, "answer", 1)
			bye(t, h, g)
		})
	}
}

// Generations that never open are retried until the reconnect window has
// passed; then the sender gives up and reports the failure.
func TestDriverGivesUpAfterWindow(t *testing.T) {
	h := infoSender(t, time.Minute)
	// The window starts when the first attempt fails (30 s) and is over
	// after the fourth (120 s).
	for n := 1; n <= 4; n++ {
		h.genN(n)
		h.clk.fire(t, connectTimeout)
	}
	err := h.result()
	if !errors.Is(err, ErrSessionLost) || !strings.Contains(err.Error(), "gave up after 1m0s") {
		t.Fatalf("Run: %v, want ErrSessionLost after 1m0s", err)
	}
	h.noGen()
	if h.d.res.Generations != 4 || !h.told(proto.MsgReport, proto.OutcomeFailed) {
		t.Errorf("generations %d, messages %v", h.d.res.Generations, h.sig.messages())
	}
}

// A receiver whose signaling cannot be resumed gives up when the window
// ends, instead of waiting for signaling forever.
func TestDriverGivesUpWithoutSignaling(t *testing.T) {
	h := startReceiver(t, time.Minute)
	g1 := h.connectReceiver(1)
	h.sig.mu.Lock()
	h.sig.resumeBad = errors.New("dial: network is unreachable")
	h.sig.mu.Unlock()
	h.sig.drop(sigclient.ErrClosed)
	g1.kill(errConnFailed)
	h.clk.fire(t, time.Minute)
	err := h.result()
	if !errors.Is(err, ErrSessionLost) || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("Run: %v, want ErrSessionLost", err)
	}
}

// Resuming ends when the server no longer knows the session.
func TestDriverSessionUnknown(t *testing.T) {
	h := infoSender(t, 0)
	h.genN(1)
	h.sig.sdp(t, "offer", 1)
	h.sig.mu.Lock()
	h.sig.resumeBad = sigclient.ErrUnknown
	h.sig.mu.Unlock()
	h.sig.drop(sigclient.ErrClosed)
	if err := h.result(); !errors.Is(err, ErrSessionLost) || !errors.Is(err, sigclient.ErrUnknown) {
		t.Fatalf("Run: %v, want ErrSessionLost and ErrUnknown", err)
	}
}

// Canceling on our side says goodbye and aborts; the other side's cancel,
// by bye or through the server's close code, ends the transfer with
// transfer.ErrCanceled.
func TestDriverCancel(t *testing.T) {
	ours := func(t *testing.T, h *harness) {
		h.cancel()
		if err := h.result(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v, want context.Canceled", err)
		}
		if !h.sentBye(byeCanceled) || !h.told(proto.MsgAbort, proto.AbortCanceled) {
			t.Errorf("signals %v, messages %v", h.sig.signals(), h.sig.messages())
		}
	}
	t.Run("ours/sender-running", func(t *testing.T) {
		h := infoSender(t, 0)
		h.connectSender(1)
		ours(t, h)
	})
	t.Run("ours/receiver-connecting", func(t *testing.T) { ours(t, startReceiver(t, 0)) })
	t.Run("theirs/bye", func(t *testing.T) {
		h := infoSender(t, 0)
		h.connectSender(1)
		h.sig.deliver(proto.Signal{T: proto.SigBye, Reason: byeCanceled})
		if err := h.result(); !errors.Is(err, transfer.ErrCanceled) {
			t.Fatalf("Run: %v, want transfer.ErrCanceled", err)
		}
		if !h.told(proto.MsgReport, proto.OutcomeCanceled) {
			t.Errorf("messages %v", h.sig.messages())
		}
	})
	t.Run("theirs/close-code", func(t *testing.T) {
		h := startReceiver(t, 0)
		h.connectReceiver(1)
		h.sig.drop(sigclient.ErrCanceled)
		if err := h.result(); !errors.Is(err, transfer.ErrCanceled) {
			t.Fatalf("Run: %v, want transfer.ErrCanceled", err)
		}
		if h.sentBye(byeCanceled) {
			t.Error("answered a cancel with a bye")
		}
		h.sig.mu.Lock()
		defer h.sig.mu.Unlock()
		if h.sig.resumes != 0 {
			t.Errorf("resumed %d times after the peer canceled", h.sig.resumes)
		}
	})
}

// Signals of other generations: candidates that come before their offer
// wait for it, stale offers and candidates of an older generation are
// ignored (receiver).
func TestDriverReceiverOutOfOrderSignals(t *testing.T) {
	h := startReceiver(t, 0)
	h.sig.deliver(cand(2, "early-2"))
	h.sig.deliver(cand(1, "early-1"))
	g1 := h.connectReceiver(1)
	h.sig.deliver(cand(2, "running-2"))
	g1.kill(errConnFailed)
	h.sig.await(t, "restart 1", func(s sent) bool { return s.m.T == proto.SigRestart && s.m.Gen == 1 })
	h.sig.deliver(sdp("offer", 1)) // a stale duplicate
	g2 := h.connectReceiver(2)
	h.sig.deliver(cand(1, "late-1"))
	h.sig.deliver(cand(2, "marker"))
	until(t, &g2.changed, &g2.mu, "the marker candidate", func() bool {
		return len(g2.cands) > 0 && *g2.cands[len(g2.cands)-1].Candidate == "marker"
	})
	h.noGen()
	if _, c, _ := g1.state(); len(c) != 1 || *c[0].Candidate != "early-1" {
		t.Errorf("generation 1 got candidates %v", c)
	}
	if _, c, _ := g2.state(); len(c) != 3 || *c[0].Candidate != "early-2" || *c[1].Candidate != "running-2" {
		t.Errorf("generation 2 got candidates %v", c)
	}
	finish(t, g2)
	h.sig.deliver(proto.Signal{T: proto.SigBye, Reason: byeDone})
	h.succeeded()
}

// A stripe's offer goes to the current generation (PROTOCOL §3.4), never
// starts a generation, and one for another generation is ignored.
func TestDriverReceiverStripeOffers(t *testing.T) {
	h := startReceiver(t, 0)
	g1 := h.connectReceiver(1)
	stripe := func(gen, k int, sdp string) proto.Signal {
		return proto.Signal{T: proto.SigSDP, Type: "offer", SDP: sdp, Gen: gen, Stripe: k}
	}
	h.sig.deliver(stripe(2, 1, "next"))
	h.sig.deliver(stripe(0, 1, "none"))
	h.sig.deliver(stripe(1, 3, "s3"))
	until(t, &g1.changed, &g1.mu, "the stripe offer", func() bool { return len(g1.stripes) > 0 })
	h.noGen()
	g1.mu.Lock()
	got := slices.Clone(g1.stripes)
	g1.mu.Unlock()
	if len(got) != 1 || got[0].SDP != "s3" || got[0].Stripe != 3 {
		t.Errorf("generation 1 got stripes %+v", got)
	}
	finish(t, g1)
	h.sig.deliver(proto.Signal{T: proto.SigBye, Reason: byeDone})
	h.succeeded()
}

// Late answers and candidates of a lost generation do not reach the next;
// a restart for an older generation is ignored, one for the current
// generation replaces it (sender).
func TestDriverSenderLateSignals(t *testing.T) {
	h := infoSender(t, 0)
	g1 := h.connectSender(1)
	g1.kill(errConnFailed)
	g2 := h.genN(2)
	h.sig.sdp(t, "offer", 2)
	h.sig.deliver(proto.Signal{T: proto.SigSDP, Type: "answer", SDP: "late", Gen: 1})
	h.sig.deliver(cand(1, "late-1"))
	h.sig.deliver(proto.Signal{T: proto.SigSDP, Type: "answer", SDP: "answer 2", Gen: 2})
	g2.up()
	h.running(2)
	h.sig.deliver(proto.Signal{T: proto.SigRestart, Gen: 1})
	h.sig.deliver(cand(2, "marker"))
	until(t, &g2.changed, &g2.mu, "the marker candidate", func() bool { return len(g2.cands) > 0 })
	remote, cands, _ := g2.state()
	if remote != "answer 2" || len(cands) != 1 {
		t.Errorf("generation 2: remote %q, candidates %v", remote, cands)
	}
	select {
	case <-g2.Dead():
		t.Fatal("a restart for generation 1 ended generation 2")
	default:
	}
	h.sig.deliver(proto.Signal{T: proto.SigRestart, Gen: 2})
	g3 := h.connectSender(3)
	finish(t, g3)
	h.succeeded()
	if !strings.Contains(g2.Err().Error(), "asked to reconnect") {
		t.Errorf("generation 2 ended with %v", g2.Err())
	}
}

// The sender offers only after the receiver said who it is, or after
// infoWait without an answer (a browser that sends none).
func TestDriverSenderWaitsForInfo(t *testing.T) {
	h := startSender(t, 0)
	h.clk.fire(t, infoWait)
	h.sig.sdp(t, "offer", 1)
	if h.d.peerIsGo() {
		t.Error("a peer without info taken for a Go peer")
	}
}

// Only a sender stripes, only to a browser that announced stripes, and
// then as proto.StripeCount says for the path (PROTOCOL §3.4).
func TestDriverStripesFor(t *testing.T) {
	d := newDriver(nil, nil, realClock{}, slog.New(slog.DiscardHandler), nil, 0)
	rtt := 30 * time.Millisecond
	if n := d.stripesFor(Options{}, false)(rtt); n != 1 {
		t.Errorf("receiver: %d connections, want 1", n)
	}
	d.left = &atomic.Int64{}
	d.left.Store(1 << 30)
	if n := d.stripesFor(Options{}, false)(rtt); n != 1 {
		t.Errorf("peer without the feature: %d connections, want 1", n)
	}
	d.features.list = []string{proto.FeatureResume, proto.FeatureStripes}
	if n := d.stripesFor(Options{}, false)(rtt); n != proto.MaxStripes {
		t.Errorf("browser at 30 ms: %d connections, want %d", n, proto.MaxStripes)
	}
	if n := d.stripesFor(Options{}, true)(rtt); n != 1 {
		t.Errorf("Go peer: %d connections, want 1", n)
	}
	if n := d.stripesFor(Options{}, false)(time.Millisecond); n != proto.MaxStripes/2 {
		t.Errorf("browser on a LAN: %d connections, want %d", n, proto.MaxStripes/2)
	}
	d.left.Store(1 << 20)
	if n := d.stripesFor(Options{}, false)(rtt); n != 1 {
		t.Errorf("browser, 1 MiB left: %d connections, want 1", n)
	}
}
