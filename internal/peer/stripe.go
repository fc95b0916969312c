package peer

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
)

// stripeLabel is a stripe connection's data channel (PROTOCOL §3.4).
const stripeLabel = "ferry-stripe"

// stripeConnect bounds how long a stripe may take to open; one that does
// not is dropped and the generation goes on without it.
const stripeConnect = 15 * time.Second

var errStripe = errors.New("peer: stripe lost")

// rmsg is one message for the reader of a generation with stripes: b is
// valid until the next Recv, which gives it back to its reader on free.
type rmsg struct {
	b    []byte
	free chan struct{}
}

// stripeConn is stripe connection k of a generation: a PeerConnection
// with one data channel that carries only the sender's CHUNK frames.
type stripeConn struct {
	k      int
	pc     *webrtc.PeerConnection
	opened bool // under the generation's mu
}

// striped reports whether this side takes stripes: a receiver whose peer
// is a browser (two Go peers do not stripe, PROTOCOL §3.4).
func (l *pionGeneration) striped() bool { return l.answerer && (!l.big || l.opts.stripes > 0) }

// stripeConfig is a stripe connection's. A direct generation's stripes go
// direct: STUN servers only. A relayed one's (the offer carries relay
// candidates, or this peer is relay-only) also get the TURN servers'
// UDP URLs: one allocation per stripe and peer, which the relay's
// allocations per link must leave room for (PROTOCOL §3.4).
func (l *pionGeneration) stripeConfig(relay bool) webrtc.Configuration {
	relayOnly := l.opts.RelayOnly || l.opts.relayStripes
	relay = relay || relayOnly
	var ice []webrtc.ICEServer
	for _, s := range l.ice {
		var urls []string
		for _, u := range s.URLs {
			if proto.StripeKeepsICEURL(u, relay) {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			ice = append(ice, webrtc.ICEServer{URLs: urls, Username: s.Username, Credential: s.Credential})
		}
	}
	c := webrtc.Configuration{ICEServers: ice}
	if relayOnly {
		c.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return c
}

// spawn runs f in a goroutine of the generation, unless it is dead.
func (l *pionGeneration) spawn(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failed {
		l.wg.Go(f)
	}
}

// Stripe handles the peer's description of stripe connection m.Stripe:
// the receiver answers an offer (in the background: the answer waits for
// gathering).
func (l *pionGeneration) Stripe(m proto.Signal) {
	if m.T == proto.SigSDP && m.Type == "answer" && !l.answerer {
		l.mu.Lock()
		s := l.stripes[m.Stripe]
		l.mu.Unlock()
		if s != nil {
			if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
				l.dropStripe(s, fmt.Errorf("bad answer: %w", err))
			}
		}
		return
	}
	if !l.striped() || m.T != proto.SigSDP || m.Type != "offer" || m.Stripe < 1 || m.Stripe >= proto.MaxStripes {
		return
	}
	l.mu.Lock()
	if l.failed || l.stripes[m.Stripe] != nil {
		l.mu.Unlock()
		return
	}
	pc, err := l.api.NewPeerConnection(l.stripeConfig(proto.RelayedStripeOffer(m.SDP)))
	if err != nil {
		l.mu.Unlock()
		l.log.Debug("stripe not made", "gen", l.gen, "stripe", m.Stripe, "err", err)
		return
	}
	s := &stripeConn{k: m.Stripe, pc: pc}
	l.stripes[m.Stripe] = s
	l.meters = append(l.meters, newPathMeter(pc))
	l.wg.Go(func() { l.answerStripe(s, m.SDP) })
	l.mu.Unlock()
}

func (l *pionGeneration) answerStripe(s *stripeConn, offer string) {
	pc := s.pc
	l.watchStripePC(s)
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != stripeLabel {
			return
		}
		l.watchStripe(s, dc, func(raw datachannel.ReadWriteCloser) {
			l.wg.Go(func() { l.feed(raw, s.k) })
		})
	})
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		l.dropStripe(s, err)
		return
	}
	ans, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(ans)
	}
	if err != nil {
		l.dropStripe(s, err)
		return
	}
	// Stripes do not trickle: the answer carries the candidates gathered
	// by then.
	l.describeStripe(s, gathered, "answer")
}

// offerStripes offers the stripes of a sender's generation, as many as
// stripesFor says for the path's round trip time (PROTOCOL §3.4).
func (l *pionGeneration) offerStripes() {
	var rtt time.Duration
	if sctp := l.pc.SCTP(); sctp != nil {
		rtt = time.Duration(sctp.Stats().SmoothedRoundTripTime * float64(time.Second))
	}
	n := min(l.stripesFor(rtt), proto.MaxStripes)
	relay := l.opts.RelayOnly || l.Path() != proto.PathDirect
	if relay {
		n = min(n, proto.MaxRelayStripes)
	}
	l.log.Debug("stripes", "gen", l.gen, "rtt", rtt, "connections", n)
	l.mu.Lock()
	l.opening = n - 1
	if l.opening <= 0 {
		close(l.allOpen)
	}
	l.mu.Unlock()
	for k := 1; k < n; k++ {
		pc, err := l.api.NewPeerConnection(l.stripeConfig(relay))
		if err != nil {
			l.log.Debug("stripe not made", "gen", l.gen, "stripe", k, "err", err)
			return
		}
		s := &stripeConn{k: k, pc: pc}
		l.mu.Lock()
		if l.failed {
			l.mu.Unlock()
			_ = pc.Close()
			return
		}
		l.stripes[k] = s
		l.meters = append(l.meters, newPathMeter(pc))
		l.wg.Go(func() { l.offerStripe(s) })
		l.mu.Unlock()
	}
}

func (l *pionGeneration) offerStripe(s *stripeConn) {
	pc := s.pc
	l.watchStripePC(s)
	ordered := false
	dc, err := pc.CreateDataChannel(stripeLabel, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		l.dropStripe(s, err)
		return
	}
	l.watchStripe(s, dc, func(raw datachannel.ReadWriteCloser) {
		if l.opening--; l.opening == 0 {
			close(l.allOpen)
		}
		l.wg.Go(func() { l.drain(raw, s.k) })
		// The main channel's own writer takes chunks from the queue too.
		l.drainMain.Do(func() {
			main := l.raw
			l.wg.Go(func() { l.drain(main, 0) })
		})
		l.striping.Store(true)
	})
	gathered := webrtc.GatheringCompletePromise(pc)
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		l.dropStripe(s, err)
		return
	}
	l.describeStripe(s, gathered, "offer")
}

// describeStripe sends a stripe's description once gathering is complete
// or after proto.StripeDescribeWait (stripes do not trickle), then drops
// the stripe if it does not open in time.
func (l *pionGeneration) describeStripe(s *stripeConn, gathered <-chan struct{}, typ string) {
	wait := time.NewTimer(proto.StripeDescribeWait)
	defer wait.Stop()
	select {
	case <-gathered:
	case <-wait.C:
	case <-l.dead:
		return
	}
	l.onSignal(proto.Signal{T: proto.SigSDP, Type: typ, SDP: s.pc.LocalDescription().SDP, Gen: l.gen, Stripe: s.k})
	open := time.NewTimer(stripeConnect)
	defer open.Stop()
	select {
	case <-open.C:
		l.mu.Lock()
		opened := s.opened
		l.mu.Unlock()
		if !opened {
			l.dropStripe(s, errors.New("not open in time"))
		}
	case <-l.dead:
	}
}

// awaitStripes waits until every stripe offered is open, the generation
// died, or the stripes had their time.
func (l *pionGeneration) awaitStripes() {
	t := time.NewTimer(proto.StripeDescribeWait + stripeConnect)
	defer t.Stop()
	select {
	case <-l.allOpen:
	case <-l.dead:
	case <-t.C:
	}
}

// queueChunk hands a CHUNK frame to whichever channel's writer is free
// first; the frame is copied, since the caller reuses it.
func (l *pionGeneration) queueChunk(b []byte) error {
	cp := append([]byte(nil), b...)
	select {
	case l.chunkQ <- cp:
		return nil
	case <-l.dead:
		return l.deadErr
	}
}

// drain writes queued chunks to one channel (k = 0: the main one) until
// the generation dies; a write blocks while that connection's send
// buffer is full, so the faster connections take more.
func (l *pionGeneration) drain(rw datachannel.ReadWriteCloser, k int) {
	for {
		select {
		case b := <-l.chunkQ:
			if l.testLost.Load() && k != l.testLostK {
				// Tests: a stripe was closed (stripeWrote). The others
				// wait, so that the transfer cannot complete before the
				// closed stripe's next write fails, however fast they are.
				select {
				case l.chunkQ <- b:
				case <-l.dead:
				}
				<-l.dead
				return
			}
			if _, err := rw.Write(b); err != nil {
				if k > 0 {
					err = fmt.Errorf("%w: stripe %d: %v", errStripe, k, err)
				}
				l.fail(err)
				return
			}
			l.used.Or(1 << k)
			if k > 0 && l.opts.stripeWrote != nil && l.opts.stripeWrote(l.gen, k) {
				l.mu.Lock()
				if s := l.stripes[k]; s != nil && !l.failed {
					l.wg.Go(func() { _ = s.pc.Close() })
				}
				l.mu.Unlock()
				l.testLostK = k
				l.testLost.Store(true)
				// Closed here too, so that its next write fails at once
				// rather than once the connection's close lands.
				_ = rw.Close()
			}
		case <-l.dead:
			return
		}
	}
}

// dropStripe: a stripe that never opened is dropped; one that was open may
// have had chunks in flight, so the generation ends and the next resumes
// from what was committed.
func (l *pionGeneration) dropStripe(s *stripeConn, why error) {
	l.mu.Lock()
	if l.failed || l.stripes[s.k] != s {
		l.mu.Unlock()
		return
	}
	if s.opened {
		l.mu.Unlock()
		l.fail(fmt.Errorf("%w: stripe %d: %v", errStripe, s.k, why))
		return
	}
	delete(l.stripes, s.k)
	// Not here: dropStripe runs in pion's callbacks, which Close waits for.
	l.wg.Go(func() { _ = s.pc.Close() })
	l.mu.Unlock()
	l.log.Debug("stripe dropped", "gen", l.gen, "stripe", s.k, "err", why)
}

// Stripes is how many of the generation's connections carried chunks.
func (l *pionGeneration) Stripes() int { return bits.OnesCount32(l.used.Load() | 1) }

// closeStripes closes every stripe connection (the generation is dead).
func (l *pionGeneration) closeStripes() {
	l.mu.Lock()
	ss := l.stripes
	l.stripes = map[int]*stripeConn{}
	l.mu.Unlock()
	for _, s := range ss {
		if err := s.pc.Close(); err != nil {
			l.log.Debug("closing a stripe", "gen", l.gen, "stripe", s.k, "err", err)
		}
	}
}

// feed reads one channel of a striped generation (k = 0: the main one)
// and hands each message to Recv, waiting until Recv is done with it.
func (l *pionGeneration) feed(rw datachannel.ReadWriteCloser, k int) {
	buf := make([]byte, l.opts.maxMessage())
	free := make(chan struct{}, 1)
	for {
		n, err := rw.Read(buf)
		if err != nil {
			if k > 0 {
				err = fmt.Errorf("%w: stripe %d: %v", errStripe, k, err)
			}
			l.fail(err)
			return
		}
		if k > 0 && (n == 0 || buf[0] != proto.FrameChunk) {
			l.fail(fmt.Errorf("%w: stripe %d carried a frame other than CHUNK", errStripe, k))
			return
		}
		l.used.Or(1 << k)
		select {
		case l.msgs <- rmsg{b: buf[:n], free: free}:
		case <-l.dead:
			return
		}
		select {
		case <-free:
		case <-l.dead:
			return
		}
	}
}

// recvMerged is Recv for a striped generation: the next message from any
// of its channels.
func (l *pionGeneration) recvMerged() ([]byte, error) {
	l.recvMu.Lock()
	defer l.recvMu.Unlock()
	if l.lastFree != nil {
		l.lastFree <- struct{}{}
		l.lastFree = nil
	}
	select {
	case m := <-l.msgs:
		l.lastFree = m.free
		return m.b, nil
	case <-l.dead:
		return nil, l.deadErr
	}
}

// watchStripePC drops stripe s when its peer connection fails or closes.
func (l *pionGeneration) watchStripePC(s *stripeConn) {
	s.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			l.dropStripe(s, fmt.Errorf("peer connection %s", st))
		}
	})
}

// watchStripe detaches stripe s's channel dc when it opens and hands it to
// opened (with l.mu held, unless the generation has failed); a channel
// that closes drops the stripe.
func (l *pionGeneration) watchStripe(s *stripeConn, dc *webrtc.DataChannel, opened func(datachannel.ReadWriteCloser)) {
	dc.OnOpen(func() {
		raw, err := dc.Detach()
		if err != nil {
			l.dropStripe(s, err)
			return
		}
		l.mu.Lock()
		if l.failed {
			l.mu.Unlock()
			return
		}
		s.opened = true
		opened(raw)
		l.mu.Unlock()
		l.log.Debug("stripe open", "gen", l.gen, "stripe", s.k, "path", pairPath(s.pc))
	})
	dc.OnClose(func() { l.dropStripe(s, errConnClosed) })
}
