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
	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
)

// Generation errors.
var (
	errConnFailed = errors.New("peer: connection failed")
	errConnClosed = errors.New("peer: connection closed")
	// errSenderMovedOn: the sender offered a newer generation.
	errSenderMovedOn = errors.New("peer: the sender started a new connection")
)

const (
	// channelLabel is the transfer data channel (PROTOCOL §3.4).
	channelLabel = "ferry"
	// disconnectGrace is how long ICE may stay "disconnected" before the
	// generation is given up and a new generation is built.
	disconnectGrace = 4 * time.Second
	// browserMaxMessage caps messages to peers that are not ferry Go peers.
	browserMaxMessage = proto.BrowserMaxMessage
)

// pionGeneration is a generation over pion: a PeerConnection and its data
// channel.
type pionGeneration struct {
	gen  int
	pc   *webrtc.PeerConnection
	log  *slog.Logger
	big  bool // the peer takes large messages (a Go peer)
	opts Options
	// api and ice make stripe connections; onSignal sends their
	// descriptions. answerer: this side answers (the receiver).
	api      *webrtc.API
	ice      []proto.ICEServer
	onSignal func(proto.Signal)
	answerer bool
	stripes  map[int]*stripeConn // under mu
	// stripesFor says how many connections to stripe over (sender; nil:
	// none); stripeOnce decides it at the first chunk, striping says a
	// stripe is open, and chunkQ then takes every CHUNK frame to the
	// writers of all channels.
	stripesFor func(rtt time.Duration) int
	stripeOnce sync.Once
	striping   atomic.Bool
	drainMain  sync.Once
	chunkQ     chan []byte
	// used has bit k set once stripe k carried a chunk.
	used atomic.Uint32
	// testLost: stripeWrote closed stripe testLostK (set before).
	testLost  atomic.Bool
	testLostK int
	// allOpen is closed once every stripe offered is open (forced stripes).
	allOpen chan struct{}
	opening int // stripes offered and not open yet, under mu
	// msgs carries the messages of every channel of a striped generation
	// (striped) to Recv; lastFree gives the last one's buffer back.
	msgs     chan rmsg
	recvMu   sync.Mutex
	lastFree chan struct{}

	mu          sync.Mutex
	remoteSet   bool
	pending     []webrtc.ICECandidateInit
	raw         datachannel.ReadWriteCloser
	dc          *webrtc.DataChannel
	disconnectT *time.Timer
	failed      bool
	// data is the data channel as a transfer.Conn; quic, if set, the QUIC
	// connection the transfer runs over instead (setupQUIC), and qc that
	// as a transfer.Conn.
	data *dcConn
	quic *quicLink
	qc   *quicConn

	open     chan struct{}
	openOnce sync.Once
	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error
	// closed is closed when the PeerConnection is closed and the
	// goroutines the generation started have ended.
	closed chan struct{}
	// meters count the bytes of the main connection and of every stripe
	// made (PathBytes), under mu.
	meters []*pathMeter
	wg     sync.WaitGroup
}

func newPionGeneration(api *webrtc.API, gen int, o Options, ice []proto.ICEServer, big bool, log *slog.Logger,
	onCandidate func(proto.Signal)) (*pionGeneration, error) {
	cfg := webrtc.Configuration{ICEServers: toPion(ice)}
	if o.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	l := &pionGeneration{gen: gen, pc: pc, log: log, big: big, opts: o, api: api, ice: ice, onSignal: onCandidate,
		stripes: map[int]*stripeConn{}, msgs: make(chan rmsg), chunkQ: make(chan []byte), allOpen: make(chan struct{}),
		open: make(chan struct{}), dead: make(chan struct{}), closed: make(chan struct{})}
	l.meters = []*pathMeter{newPathMeter(pc)}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		empty := ""
		if c == nil {
			onCandidate(proto.Signal{T: proto.SigCand, Candidate: &empty, Gen: gen})
			return
		}
		j := c.ToJSON()
		onCandidate(proto.Signal{T: proto.SigCand, Candidate: &j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex, Gen: gen})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			l.fail(errConnFailed)
		case webrtc.PeerConnectionStateClosed:
			l.fail(errConnClosed)
		}
	})
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch s {
		case webrtc.ICEConnectionStateDisconnected:
			if l.disconnectT == nil {
				l.disconnectT = time.AfterFunc(disconnectGrace, func() {
					l.fail(fmt.Errorf("%w: no traffic for %s", errConnFailed, disconnectGrace))
				})
			}
		case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
			if l.disconnectT != nil {
				l.disconnectT.Stop()
				l.disconnectT = nil
			}
		}
	})
	return l, nil
}

func toPion(servers []proto.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(servers))
	for _, s := range servers {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// Offer creates the data channel and the offer (sender side).
func (l *pionGeneration) Offer() (string, error) {
	ordered := true
	dc, err := l.pc.CreateDataChannel(channelLabel, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return "", err
	}
	l.watch(dc)
	return l.setLocal(l.pc.CreateOffer(nil))
}

// Answer applies an offer and returns the answer (receiver side).
func (l *pionGeneration) Answer(sdp string) (string, error) {
	l.mu.Lock()
	l.answerer = true
	l.mu.Unlock()
	l.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() == channelLabel {
			l.watch(dc)
		}
	})
	if err := l.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return "", err
	}
	return l.setLocal(l.pc.CreateAnswer(nil))
}

// setLocal applies the offer or answer we created.
func (l *pionGeneration) setLocal(d webrtc.SessionDescription, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if err := l.pc.SetLocalDescription(d); err != nil {
		return "", err
	}
	return d.SDP, nil
}

// SetAnswer applies the receiver's answer (sender side).
func (l *pionGeneration) SetAnswer(sdp string) error {
	return l.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
}

func (l *pionGeneration) setRemote(d webrtc.SessionDescription) error {
	if err := l.pc.SetRemoteDescription(d); err != nil {
		return err
	}
	l.mu.Lock()
	l.remoteSet = true
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, c := range pending {
		if err := l.pc.AddICECandidate(c); err != nil {
			l.log.Debug("remote candidate refused", "err", err)
		}
	}
	return nil
}

// AddCandidate adds a trickled remote candidate, queueing it until the
// remote description is known.
func (l *pionGeneration) AddCandidate(s proto.Signal) {
	if s.Candidate == nil {
		return
	}
	c := webrtc.ICECandidateInit{Candidate: *s.Candidate, SDPMid: s.SDPMid, SDPMLineIndex: s.SDPMLineIndex}
	l.mu.Lock()
	if !l.remoteSet {
		l.pending = append(l.pending, c)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	if err := l.pc.AddICECandidate(c); err != nil {
		l.log.Debug("remote candidate refused", "err", err)
	}
}

func (l *pionGeneration) watch(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		raw, err := dc.Detach()
		if err != nil {
			l.fail(err)
			return
		}
		l.mu.Lock()
		l.raw, l.dc = raw, dc
		if !l.failed && l.log.Enabled(context.Background(), slog.LevelDebug) {
			l.wg.Go(l.logStats)
		}
		// A striped generation reads every channel in the background.
		if !l.failed && l.striped() {
			l.wg.Go(func() { l.feed(raw, 0) })
		}
		l.mu.Unlock()
		l.openOnce.Do(func() { close(l.open) })
	})
	dc.OnClose(func() { l.fail(errConnClosed) })
}

func (l *pionGeneration) Open() <-chan struct{} { return l.open }
func (l *pionGeneration) Dead() <-chan struct{} { return l.dead }

// Err is why the generation died (valid once Dead is closed).
func (l *pionGeneration) Err() error { return l.deadErr }

func (l *pionGeneration) fail(err error) {
	l.deadOnce.Do(func() {
		l.deadErr = err
		close(l.dead)
		l.log.Debug("generation down", "gen", l.gen, "err", err)
		l.mu.Lock()
		l.failed = true // no goroutine starts after this
		if l.disconnectT != nil {
			l.disconnectT.Stop()
		}
		l.mu.Unlock()
		// Unblock readers and writers of the detached channel. Not here:
		// fail runs in pion's callbacks too, which Close would wait for.
		go func() {
			l.closeStripes()
			l.mu.Lock()
			q := l.quic
			l.mu.Unlock()
			if q != nil {
				q.close() // tells the peer, before the path goes
			}
			if err := l.pc.Close(); err != nil {
				l.log.Debug("closing the peer connection", "gen", l.gen, "err", err)
			}
			l.wg.Wait()
			close(l.closed)
		}()
	})
}

// Close tears the generation down for good and waits until it is.
func (l *pionGeneration) Close(err error) {
	l.fail(err)
	<-l.closed
}

// Path reports whether the main connection's selected candidate pair goes
// through a relay ("" before there is one, or once ICE has closed).
func (l *pionGeneration) Path() string { return pairPath(l.pc) }

// PathBytes is what the generation's connections (the main one and its
// stripes) carried over direct and over relayed candidate pairs.
func (l *pionGeneration) PathBytes() PathBytes {
	l.mu.Lock()
	meters := slices.Clone(l.meters)
	l.mu.Unlock()
	var b PathBytes
	for _, m := range meters {
		b.add(m.bytes())
	}
	return b
}

// pairPath is proto.PathRelay or proto.PathDirect for pc's selected
// candidate pair, "" before there is one.
func pairPath(pc *webrtc.PeerConnection) string {
	t := iceTransport(pc)
	if t == nil {
		return ""
	}
	pair, err := t.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return ""
	}
	if relayedPair(pair) {
		return proto.PathRelay
	}
	return proto.PathDirect
}

// iceTransport is pc's ICE transport, nil if it has none.
func iceTransport(pc *webrtc.PeerConnection) *webrtc.ICETransport {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil {
		return nil
	}
	return sctp.Transport().ICETransport()
}

// relayedPair reports whether either end of a complete pair is a relay
// candidate.
func relayedPair(p *webrtc.ICECandidatePair) bool {
	return p != nil && p.Local != nil && p.Remote != nil &&
		(p.Local.Typ == webrtc.ICECandidateTypeRelay || p.Remote.Typ == webrtc.ICECandidateTypeRelay)
}

// What a transfer runs over (Result.Transport).
const (
	TransportSCTP = "sctp"
	TransportQUIC = "quic"
)

// Transport is what the transfer runs over.
func (l *pionGeneration) Transport() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.quic != nil {
		return TransportQUIC
	}
	return TransportSCTP
}

// PacketSize is the size of the SCTP packets this side sends (pathMTU),
// or over QUIC the average size of the QUIC packets it sent so far, which
// path MTU discovery raises from 1280 bytes.
func (l *pionGeneration) PacketSize() uint32 {
	l.mu.Lock()
	q := l.quic
	l.mu.Unlock()
	if q != nil {
		return q.packetSize()
	}
	if sctp := l.pc.SCTP(); sctp != nil {
		return sctp.Stats().MTU
	}
	return 0
}

// Conn returns what the transfer runs over: the QUIC stream if
// setupQUIC set one up, else the open data channel.
func (l *pionGeneration) Conn() transfer.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.quic != nil {
		if l.qc == nil {
			max := l.dataConnLocked().max // the same messages as over the data channel
			l.qc = &quicConn{g: l, q: l.quic, max: max, limit: int(l.opts.maxMessage())}
		}
		return l.qc
	}
	return l.dataConnLocked()
}

// dataConn is the open data channel as a transfer.Conn.
func (l *pionGeneration) dataConn() *dcConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dataConnLocked()
}

func (l *pionGeneration) dataConnLocked() *dcConn {
	if l.data == nil {
		max := browserMaxMessage
		if caps := l.pc.SCTP().GetCapabilities(); l.big && caps.MaxMessageSize > 0 {
			max = int(min(caps.MaxMessageSize, l.opts.maxMessage()))
		}
		l.data = &dcConn{g: l, rw: l.raw, max: max, limit: int(l.opts.maxMessage())}
	}
	return l.data
}

// dcConn adapts a detached data channel to transfer.Conn.
type dcConn struct {
	g     *pionGeneration
	rw    datachannel.ReadWriteCloser
	max   int
	limit int // the largest message read: len(buf) once it is made
	// buf is made by the first Recv and dropped once QUIC carries the
	// transfer (releaseBuffer): 2 MiB of a QUIC receiver's heap otherwise.
	buf []byte
	// next is a message read before the transfer began, which Recv
	// returns first (setupQUIC).
	next []byte
}

// unread makes msg the next message Recv returns.
func (c *dcConn) unread(msg []byte) {
	c.next = append([]byte(nil), msg...)
}

func (c *dcConn) Send(b []byte) error {
	if len(b) > 0 && b[0] == proto.FrameChunk && c.g.stripesFor != nil {
		// The first chunk: the receiver accepted, the connection works.
		c.g.stripeOnce.Do(func() {
			c.g.spawn(c.g.offerStripes)
			if c.g.opts.stripes > 0 {
				// Forced (tests): the chunks wait for every stripe, so that
				// each carries some however fast the transfer.
				c.g.awaitStripes()
			}
		})
		if c.g.striping.Load() {
			return c.g.queueChunk(b)
		}
	}
	_, err := c.rw.Write(b)
	if err != nil {
		c.g.fail(err)
	}
	return err
}

func (c *dcConn) Recv() ([]byte, error) {
	if c.buf == nil {
		c.buf = make([]byte, c.limit)
	}
	if c.next != nil {
		n := copy(c.buf, c.next)
		c.next = nil
		return c.buf[:n], nil
	}
	if c.g.striped() {
		return c.g.recvMerged()
	}
	n, err := c.rw.Read(c.buf)
	if err != nil {
		c.g.fail(err)
		return nil, err
	}
	return c.buf[:n], nil
}

func (c *dcConn) MaxMessage() int { return c.max }

// releaseBuffer lets the collector have the read buffer, by the goroutine
// that read last, when the channel is read no more (QUIC carries the
// transfer); a later Recv would make another.
func (c *dcConn) releaseBuffer() { c.buf = nil }

func (c *dcConn) Close() error {
	c.g.fail(errConnClosed)
	return nil
}

// logStats logs the SCTP association's (or the QUIC connection's) state
// every second while the generation lives, for diagnosing throughput (a small cwnd means losses
// or a slow start; a small rwnd a slow receiver).
func (l *pionGeneration) logStats() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last, lastPackets uint64
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			q := l.quic
			l.mu.Unlock()
			if q != nil {
				// packet: the average size of this second's packets, which
				// path MTU discovery raises from 1280 towards 1452 bytes.
				st := q.conn.ConnectionStats()
				packet := uint64(0)
				if st.PacketsSent > lastPackets {
					packet = (st.BytesSent - last) / (st.PacketsSent - lastPackets)
				}
				l.log.Debug("quic", "gen", l.gen, "MBps", float64(st.BytesSent-last)/1e6, "cwnd", st.CongestionWindow,
					"srtt_ms", float64(st.SmoothedRTT.Microseconds())/1000, "min_rtt_ms", float64(st.MinRTT.Microseconds())/1000,
					"lost", st.PacketsLost, "packet", packet, "sent", st.PacketsSent, "received", st.PacketsReceived,
					"dropped", st.PacketsDropped)
				last, lastPackets = st.BytesSent, st.PacketsSent
				continue
			}
			sctp := l.pc.SCTP()
			if sctp == nil {
				continue
			}
			st := sctp.Stats()
			l.log.Debug("sctp", "gen", l.gen, "MBps", float64(st.BytesSent-last)/1e6, "cwnd", st.CongestionWindow,
				"rwnd", st.ReceiverWindow, "srtt_ms", st.SmoothedRoundTripTime*1000, "mtu", st.MTU)
			last = st.BytesSent
		case <-l.dead:
			return
		}
	}
}
