package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// Errors the session returns besides sigclient's and transfer's.
var (
	ErrPeerLeft      = errors.New("peer: the other side left")
	ErrSessionLost   = errors.New("peer: could not reconnect to the other side")
	errSignalingDown = errors.New("peer: signaling connection lost")
	// errPeerDone is the bye of a peer that finished successfully.
	errPeerDone = errors.New("peer: the other side finished")
)

// Events lets a user interface follow a transfer. Every field may be nil.
type Events struct {
	// Link is the link to share (sender), with the ticket expiry.
	Link func(link string, expires time.Time)
	// Storable: the server would store this link's transfer if the sender
	// asks (with this token) instead of waiting (sender; PROTOCOL.md §6.5).
	Storable func(tk ticket.Ticket, token string)
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

// newPeerDriver is a driver over sig with pion generations.
func newPeerDriver(cfg *Config, sig signaler, r role, reconnectFor time.Duration) *driver {
	d := newDriver(sig, nil, realClock{}, cfg.logger(), r, reconnectFor)
	d.events = cfg.Events
	api := newAPI(cfg.Options, d.log, d.peerPacketLimit)
	d.quic = !cfg.NoQUIC
	offers := r.offers()
	d.prepare = func(ctx context.Context, g generation) {
		if pg, ok := g.(*pionGeneration); ok {
			pg.setupQUIC(ctx, offers, d.peerQUIC())
		}
	}
	d.newGen = func(n int, ice []proto.ICEServer, goPeer bool, signal func(proto.Signal)) (generation, error) {
		if len(cfg.ICEServers) > 0 {
			ice = cfg.ICEServers
		}
		g, err := newPionGeneration(api, n, cfg.Options, ice, goPeer, d.log, signal)
		if g != nil {
			g.stripesFor = d.stripesFor(cfg.Options, goPeer)
		}
		return g, err
	}
	return d
}

// session is the signaler over sigclient: the current signaling connection
// of a resume session, replaced by Resume.
type session struct {
	server *url.URL
	dial   sigclient.Options
	role   handshake.Role
	id     string
	secret []byte

	mu   sync.Mutex
	conn *sigclient.Conn
}

func (s *session) current() *sigclient.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

func (s *session) Send(ctx context.Context, m proto.Signal) error {
	return s.current().SendSignal(ctx, m)
}

func (s *session) Recv(ctx context.Context) (proto.Signal, error) {
	return s.current().RecvSignal(ctx)
}

func (s *session) Ping(ctx context.Context) error { return s.current().Ping(ctx) }

func (s *session) Tell(ctx context.Context, m proto.ClientMessage) error {
	return s.current().Send(ctx, m)
}

func (s *session) KeepAlive(ctx context.Context) error {
	_, err := s.current().ICE(ctx)
	return err
}

// Resume reconnects signaling with the session id and runs the handshake
// again with the session secret.
func (s *session) Resume(ctx context.Context) ([]proto.ICEServer, error) {
	sig, err := sigclient.Dial(ctx, s.server, s.dial)
	if err != nil {
		return nil, err
	}
	resumed, err := sig.Resume(ctx, s.id, string(s.role))
	if err == nil {
		err = sig.WaitPaired(ctx)
	}
	if err == nil {
		_, err = sig.Handshake(ctx, s.secret, s.id, s.role)
	}
	if err != nil {
		sig.Close()
		return nil, err
	}
	s.mu.Lock()
	s.conn = sig
	s.mu.Unlock()
	return resumed.ICEServers, nil
}

// Close ends the current connection.
func (s *session) Close() {
	if c := s.current(); c != nil {
		c.Close()
	}
}

// Bye reasons (PROTOCOL §3.3).
const (
	byeDone     = "done"
	byeCanceled = "canceled"
	byeDeclined = "declined"
	byeError    = "error"
)

func byeErr(reason string) error {
	switch reason {
	case byeCanceled:
		return transfer.ErrCanceled
	case byeDone:
		return errPeerDone
	case byeDeclined:
		return transfer.ErrDeclined
	}
	return fmt.Errorf("%w (%s)", ErrPeerLeft, reason)
}

// byeFor is the bye reason that tells the peer about a fatal err.
func byeFor(err error) string {
	switch {
	case errors.Is(err, transfer.ErrDeclined), errors.Is(err, transfer.ErrExists), errors.Is(err, transfer.ErrTooLarge):
		return byeDeclined
	case errors.Is(err, transfer.ErrCanceled), errors.Is(err, context.Canceled):
		return byeCanceled
	}
	return byeError
}

func outcomeOf(err error) string {
	if errors.Is(err, transfer.ErrCanceled) || errors.Is(err, context.Canceled) || errors.Is(err, ErrPeerLeft) {
		return proto.OutcomeCanceled
	}
	return proto.OutcomeFailed
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
