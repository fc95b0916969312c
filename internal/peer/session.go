package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/pion/webrtc/v4"
)

// Errors the session returns besides sigclient's and transfer's.
var (
	ErrPeerLeft      = errors.New("peer: the other side left")
	ErrSessionLost   = errors.New("peer: could not reconnect to the other side")
	errSignalingDown = errors.New("peer: signaling connection lost")
)

// Events lets a user interface follow a transfer. Every field may be nil.
type Events struct {
	// Link is the link to share (sender), with the ticket expiry.
	Link func(link string, expires time.Time)
	// Paired: the other side opened the link.
	Paired func()
	// Phrase: key confirmation succeeded; show these words.
	Phrase func(words []string)
	// Connected: a connection generation is up, direct or through a relay.
	Connected func(path string, gen int)
	// Reconnecting: the connection broke; the peer is building a new one.
	Reconnecting func(err error)
	// Manifest: what the sender offers (receiver).
	Manifest func(*proto.Manifest)
}

// Config is what both roles share.
type Config struct {
	// Server is the ferry server's base URL.
	Server *url.URL
	Options
	Events Events
	Logger *slog.Logger
	// Dial overrides sigclient options (tests).
	Dial sigclient.Options
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// session is one side of a transfer's signaling: the current signaling
// connection, the keys, and routing of sealed signals to connection
// generations.
type session struct {
	cfg  *Config
	role handshake.Role
	api  *webrtc.API
	log  *slog.Logger

	ticketID      string
	maxBytes      int64    // the server's transfer size policy
	auditNames    bool     // the operator records file names
	names         []string // file names, for reports when auditNames
	sessionID     string
	sessionSecret []byte
	phrase        []string

	mu       sync.Mutex
	sig      *sigclient.Conn
	sigDown  chan struct{} // closed when the current signaling connection ends
	ice      []proto.ICEServer
	cur      *link
	peerInfo proto.Signal
	gotInfo  chan struct{} // closed when peerInfo arrived
	// Receiver: candidates that arrived before their generation's link.
	early map[int][]proto.Signal

	offers   chan proto.Signal // receiver: offers of new generations
	restarts chan int          // sender: the receiver asks for a new generation
	// bye is closed when the peer says it is leaving for good; byeReason says why.
	bye       chan struct{}
	byeReason string

	// changed is closed (and replaced) whenever signaling comes up or is
	// given up; lost is why it was given up.
	changed chan struct{}
	lost    error
	keeper  context.CancelFunc
}

func newSession(cfg *Config, role handshake.Role) *session {
	s := &session{
		cfg: cfg, role: role, log: cfg.logger(),
		early:    map[int][]proto.Signal{},
		offers:   make(chan proto.Signal, 4),
		restarts: make(chan int, 4),
		bye:      make(chan struct{}),
		changed:  make(chan struct{}),
		gotInfo:  make(chan struct{}),
	}
	s.api = newAPI(cfg.Options, s.log, s.peerPacketLimit)
	return s
}

// notifyLocked wakes everyone waiting in ensureSignaling.
func (s *session) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// keepSignaling reconnects signaling in the background whenever it drops,
// so that a peer that comes back (a restarted receiver, a network that
// recovers) finds us there without waiting for ICE timeouts.
func (s *session) keepSignaling() {
	s.mu.Lock()
	if s.keeper != nil {
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.keeper = cancel
	s.mu.Unlock()
	go func() {
		for {
			_, down := s.signaling()
			select {
			case <-down:
			case <-ctx.Done():
				return
			case <-s.bye:
				return // the peer is gone for good: nobody to reconnect to
			}
			if err := s.resume(ctx); err != nil {
				s.mu.Lock()
				if ctx.Err() == nil {
					s.lost = err
				}
				s.notifyLocked()
				s.mu.Unlock()
				return
			}
		}
	}()
}

// established records a confirmed signaling connection and starts routing
// its signals.
func (s *session) established(sig *sigclient.Conn, keys *handshake.Keys, ice []proto.ICEServer) {
	s.mu.Lock()
	if s.sessionID == "" {
		// The first handshake (with the ticket) names the resume session.
		s.sessionID, s.sessionSecret, s.phrase = keys.SessionID, keys.SessionSecret, keys.Phrase
	}
	s.sig = sig
	down := make(chan struct{})
	s.sigDown = down
	if len(ice) > 0 {
		s.ice = ice
	}
	s.notifyLocked()
	s.mu.Unlock()
	go s.pump(sig, down)
	go s.keepAlive(sig, down)
	features := []string{proto.FeatureResume, proto.FeatureZeroChecksum, proto.FeatureLargePackets, proto.FeatureJumboPackets}
	s.signal(proto.Signal{T: proto.SigInfo, Agent: Agent, Features: features})
}

func (s *session) signaling() (*sigclient.Conn, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig, s.sigDown
}

// signal sends a sealed signal on the current signaling connection; a
// failure only means the connection is down, which the pump notices.
func (s *session) signal(m proto.Signal) {
	sig, _ := s.signaling()
	if sig == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sig.SendSignal(ctx, m); err != nil {
		s.log.Debug("signal not sent", "t", m.T, "err", err)
	}
}

// keepAliveEvery is how often a peer shows the server that it is still
// there while the transfer runs and signaling is quiet: servers close paired
// connections whose client sent nothing for --signal-idle-timeout (2 h by
// default), and reconnecting needs this connection.
const keepAliveEvery = 10 * time.Minute

// keepAlive asks the server for ICE servers every keepAliveEvery until the
// connection is down (its pump closes down).
func (s *session) keepAlive(sig *sigclient.Conn, down chan struct{}) {
	t := time.NewTicker(keepAliveEvery)
	defer t.Stop()
	for {
		select {
		case <-down:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			if _, err := sig.ICE(ctx); err != nil {
				s.log.Debug("keepalive not answered", "err", err)
			}
			cancel()
		}
	}
}

// pump routes sealed signals from one signaling connection until it ends.
func (s *session) pump(sig *sigclient.Conn, down chan struct{}) {
	defer close(down)
	for {
		m, err := sig.RecvSignal(context.Background())
		if err != nil {
			s.log.Debug("signaling ended", "err", err)
			if errors.Is(err, sigclient.ErrCanceled) {
				s.gotBye(byeCanceled)
			}
			return
		}
		s.route(m)
	}
}

func (s *session) gotBye(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.bye:
	default:
		s.byeReason = reason
		close(s.bye)
	}
}

func (s *session) byeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return byeErr(s.byeReason)
}

func (s *session) route(m proto.Signal) {
	switch m.T {
	case proto.SigInfo:
		s.mu.Lock()
		s.peerInfo = m
		select {
		case <-s.gotInfo:
		default:
			close(s.gotInfo)
		}
		s.mu.Unlock()
	case proto.SigSDP:
		if m.Type == "offer" && s.role == handshake.Receiver {
			select {
			case s.offers <- m:
			default: // a flood of offers: the newest that fits wins
			}
			return
		}
		if m.Type == "answer" && s.role == handshake.Sender {
			if l := s.current(m.Gen); l != nil {
				if err := l.setAnswer(m.SDP); err != nil {
					l.fail(fmt.Errorf("bad answer: %w", err))
				}
			}
		}
	case proto.SigCand:
		if l := s.current(m.Gen); l != nil {
			l.addCandidate(m)
			return
		}
		if s.role == handshake.Receiver {
			s.mu.Lock()
			if len(s.early) < 8 && len(s.early[m.Gen]) < 64 {
				s.early[m.Gen] = append(s.early[m.Gen], m)
			}
			s.mu.Unlock()
		}
	case proto.SigRestart:
		if s.role == handshake.Sender {
			select {
			case s.restarts <- m.Gen:
			default:
			}
		}
	case proto.SigBye:
		s.gotBye(m.Reason)
	}
}

// current returns the link of generation gen if it is the current one.
func (s *session) current(gen int) *link {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.gen == gen {
		return s.cur
	}
	return nil
}

func (s *session) peerIsGo() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.peerInfo.Features, proto.FeatureZeroChecksum)
}

// peerPacketLimit is the largest SCTP packet the peer reads, by the
// features it announced (0: pion's default only).
func (s *session) peerPacketLimit() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case slices.Contains(s.peerInfo.Features, proto.FeatureJumboPackets):
		return maxSCTPMTU
	case slices.Contains(s.peerInfo.Features, proto.FeatureLargePackets):
		return largeSCTPMTU
	}
	return 0
}

// infoWait bounds how long the sender waits for the receiver's info before
// its first offer; a peer that sends none is treated as a browser.
const infoWait = 5 * time.Second

// waitInfo waits until the peer said who it is (PROTOCOL §3.4: the sender
// offers after info), which decides chunk and packet sizes: a connection
// set up without it would move 64 KiB messages between two Go peers.
func (s *session) waitInfo(ctx context.Context) {
	t := time.NewTimer(infoWait)
	defer t.Stop()
	select {
	case <-s.gotInfo:
	case <-s.bye:
	case <-ctx.Done():
	case <-t.C:
		s.log.Debug("no info from the peer; assuming a browser")
	}
}

// newLink makes generation gen the current one.
func (s *session) newLink(gen int) (*link, error) {
	s.mu.Lock()
	ice := s.ice
	s.mu.Unlock()
	if len(s.cfg.ICEServers) > 0 {
		ice = s.cfg.ICEServers
	}
	l, err := newLink(s.api, gen, s.cfg.Options, ice, s.peerIsGo(), s.log, s.signal)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	old := s.cur
	s.cur = l
	early := s.early[gen]
	for g := range s.early {
		if g <= gen {
			delete(s.early, g)
		}
	}
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	for _, c := range early {
		l.addCandidate(c)
	}
	return l, nil
}

// resume reconnects signaling with the session id and runs the handshake
// again with the session secret; it retries with backoff until ctx ends
// or the server no longer knows the session.
func (s *session) resume(ctx context.Context) error {
	role := string(s.role)
	delay := 500 * time.Millisecond
	for {
		err := s.resumeOnce(ctx, role)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, sigclient.ErrUnknown) || errors.Is(err, sigclient.ErrWrongKey) ||
			errors.Is(err, sigclient.ErrCanceled) || errors.Is(err, sigclient.ErrVersion) {
			return fmt.Errorf("%w: %w", ErrSessionLost, err)
		}
		s.log.Debug("resume failed, retrying", "err", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (s *session) resumeOnce(ctx context.Context, role string) error {
	sig, err := sigclient.Dial(ctx, s.cfg.Server, s.cfg.Dial)
	if err != nil {
		return err
	}
	resumed, err := sig.Resume(ctx, s.sessionID, role)
	if err == nil {
		err = sig.WaitPaired(ctx)
	}
	var keys *handshake.Keys
	if err == nil {
		keys, err = sig.Handshake(ctx, s.sessionSecret, s.sessionID, s.role)
	}
	if err != nil {
		sig.Close()
		return err
	}
	s.established(sig, keys, resumed.ICEServers)
	return nil
}

// stopSignaling ends the keeper: the transfer is over.
func (s *session) stopSignaling() {
	s.mu.Lock()
	keeper := s.keeper
	s.mu.Unlock()
	if keeper != nil {
		keeper()
	}
}

// ensureSignaling waits until signaling is up (the keeper reconnects it).
func (s *session) ensureSignaling(ctx context.Context) error {
	for {
		s.mu.Lock()
		down, lost, changed := s.sigDown, s.lost, s.changed
		s.mu.Unlock()
		select {
		case <-down:
		default:
			return nil
		}
		if lost != nil {
			return lost
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// report tells the server how the transfer went (best effort).
func (s *session) report(path string, bytes int64, outcome string, files int) {
	sig, _ := s.signaling()
	if sig == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := proto.ClientMessage{Type: proto.MsgReport, Path: path, Bytes: bytes, Outcome: outcome, Files: files}
	if s.auditNames {
		m.Names = capNames(s.names)
	}
	_ = sig.Send(ctx, m)
}

// close ends the session's connections.
func (s *session) close() {
	s.mu.Lock()
	l, sig, keeper := s.cur, s.sig, s.keeper
	s.cur = nil
	s.mu.Unlock()
	if keeper != nil {
		keeper()
	}
	if l != nil {
		l.close()
	}
	if sig != nil {
		sig.Close()
	}
}

func (s *session) emitConnected(l *link) {
	if f := s.cfg.Events.Connected; f != nil {
		f(l.path(), l.gen)
	}
}

// maxReportNames keeps a report well inside the server's 64 KiB message
// limit, whatever the number of files (PROTOCOL §2.5: names may be cut).
const maxReportNames = 48 << 10

func capNames(names []string) []string {
	total := 0
	for i, n := range names {
		total += len(n) + 4 // quotes, comma, some escaping
		if total > maxReportNames {
			return names[:i]
		}
	}
	return names
}
