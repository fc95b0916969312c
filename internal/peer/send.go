package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

const (
	// connectTimeout bounds one attempt to bring a generation up.
	connectTimeout = 30 * time.Second
	// DefaultReconnectFor is how long a peer keeps trying to reconnect
	// after losing the other side.
	DefaultReconnectFor = 10 * time.Minute
)

// Result describes a finished transfer.
type Result struct {
	// Path is "direct" or "relay" for the last connection.
	Path string
	// Bytes is the size of the transfer; Sent what the sender put on the
	// wire (resends included, resumed chunks excluded).
	Bytes, Sent int64
	Files       int
	// Generations is how many connections it took.
	Generations int
	// Roots are the files' BLAKE3 roots (hex), in manifest order.
	Roots []string
	// PacketSize is the size of the SCTP packets this side sent on the
	// last connection: 1191, or more to a Go peer on the same link.
	PacketSize uint32
}

// SendOptions configure Send.
type SendOptions struct {
	Progress func(transfer.Progress)
	// Mangle is passed to the transfer engine (tests of verification).
	Mangle func(file int, index uint32, data []byte)
	// ReconnectFor bounds reconnection attempts (0: DefaultReconnectFor).
	ReconnectFor time.Duration
	// Engine, if set, runs each connection instead of the transfer engine:
	// tests play a sender that misbehaves on purpose.
	Engine func(ctx context.Context, c transfer.Conn) error
}

// Send creates a link, waits for the receiver and sends files to it.
func Send(ctx context.Context, cfg *Config, files []transfer.SourceFile, o SendOptions) (*Result, error) {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	s := newSession(cfg, handshake.Sender)
	defer s.close()
	sig, err := sigclient.Dial(ctx, cfg.Server, cfg.Dial)
	if err != nil {
		return nil, err
	}
	created, err := sig.Create(ctx)
	if err != nil {
		sig.Close()
		return nil, err
	}
	if created.MaxBytes > 0 && total > created.MaxBytes {
		sig.Close()
		return nil, fmt.Errorf("%w: %d bytes; this server allows at most %d per transfer", transfer.ErrTooLarge, total, created.MaxBytes)
	}
	tk, err := ticket.New(created.ID)
	if err != nil {
		sig.Close()
		return nil, fmt.Errorf("%w: server sent a bad ticket id", sigclient.ErrProtocol)
	}
	s.ticketID = tk.ID
	s.ice = created.ICEServers
	s.auditNames = created.AuditNames
	for _, f := range files {
		s.names = append(s.names, f.Path)
	}
	if f := cfg.Events.Link; f != nil {
		f(tk.Link(cfg.Server), time.Unix(created.Expires, 0))
	}
	if err := sig.WaitPaired(ctx); err != nil {
		sig.Close()
		return nil, err
	}
	if f := cfg.Events.Paired; f != nil {
		f()
	}
	keys, err := sig.Handshake(ctx, tk.Secret[:], tk.ID, handshake.Sender)
	if err != nil {
		sig.Close()
		return nil, err
	}
	if f := cfg.Events.Phrase; f != nil {
		f(keys.Phrase)
	}
	// Register the resume session before anything can break.
	if err := sig.Send(ctx, proto.ClientMessage{Type: proto.MsgSession, Session: keys.SessionID}); err != nil {
		sig.Close()
		return nil, err
	}
	if m, err := sig.Next(ctx); err != nil || m.Type != proto.MsgSession {
		sig.Close()
		if err == nil {
			err = fmt.Errorf("%w: expected session ack, got %q", sigclient.ErrProtocol, m.Type)
		}
		return nil, err
	}
	s.established(sig, keys, nil)
	s.keepSignaling()
	s.waitInfo(ctx)

	maxChunk := cfg.MaxChunk
	sender := &transfer.Sender{Files: files, MaxChunk: maxChunk, Agent: Agent, Progress: o.Progress, Mangle: o.Mangle}
	defer sender.Close()
	res := &Result{Bytes: total, Files: len(files)}
	reconnectFor := o.ReconnectFor
	if reconnectFor <= 0 {
		reconnectFor = DefaultReconnectFor
	}
	var lostAt time.Time
	var lastErr error
	for {
		if !lostAt.IsZero() && time.Since(lostAt) > reconnectFor {
			s.report(res.Path, sender.SentBytes(), proto.OutcomeFailed, len(files))
			return res, fmt.Errorf("%w (gave up after %s): %v", ErrSessionLost, reconnectFor, lastErr)
		}
		if err := ctx.Err(); err != nil {
			s.cancel()
			return res, err
		}
		if err := s.ensureSignaling(ctx); err != nil {
			return res, err
		}
		res.Generations++
		l, err := s.connectSender(ctx, res.Generations)
		if err != nil {
			if fatal(err) {
				s.report(res.Path, sender.SentBytes(), outcomeOf(err), len(files))
				return res, err
			}
			lastErr = err
			if lostAt.IsZero() {
				lostAt = time.Now()
			}
			s.reconnecting(err)
			continue
		}
		res.Path, res.PacketSize = l.path(), l.packetSize()
		s.emitConnected(l)
		run := sender.Run
		if o.Engine != nil {
			run = o.Engine
		}
		err = s.watch(ctx, l, func(ctx context.Context) error { return run(ctx, l.conn()) })
		res.Sent = sender.SentBytes()
		if err == nil {
			s.stopSignaling()
			for i := range files {
				res.Roots = append(res.Roots, sender.Root(i))
			}
			// Report first: the server reads our messages in order, so the
			// report is in before the bye can make the receiver leave.
			s.report(res.Path, total, proto.OutcomeCompleted, len(files))
			s.signal(proto.Signal{T: proto.SigBye, Reason: byeDone})
			return res, nil
		}
		if !errors.Is(err, transfer.ErrConnLost) {
			if ctx.Err() != nil {
				s.cancel()
				return res, ctx.Err()
			}
			s.report(res.Path, res.Sent, outcomeOf(err), len(files))
			s.signal(proto.Signal{T: proto.SigBye, Reason: byeFor(err)})
			return res, err
		}
		lastErr, lostAt = err, time.Now()
		s.reconnecting(err)
	}
}

func (s *session) reconnecting(err error) {
	s.log.Info("connection lost; reconnecting", "err", err)
	s.probeSignaling()
	if f := s.cfg.Events.Reconnecting; f != nil {
		f(err)
	}
}

// cancel tells the other side we are leaving for good.
func (s *session) cancel() {
	s.signal(proto.Signal{T: proto.SigBye, Reason: byeCanceled})
	sig, _ := s.signaling()
	if sig != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = sig.Send(ctx, proto.ClientMessage{Type: proto.MsgAbort, Reason: proto.AbortCanceled})
	}
}

// fatal reports errors that reconnecting cannot fix.
func fatal(err error) bool {
	return errors.Is(err, ErrPeerLeft) || errors.Is(err, transfer.ErrCanceled) ||
		errors.Is(err, ErrSessionLost) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func outcomeOf(err error) string {
	if errors.Is(err, transfer.ErrCanceled) || errors.Is(err, context.Canceled) || errors.Is(err, ErrPeerLeft) {
		return proto.OutcomeCanceled
	}
	return proto.OutcomeFailed
}

// connectSender brings generation gen up: offer, trickle, data channel open.
func (s *session) connectSender(ctx context.Context, gen int) (*link, error) {
	l, err := s.newLink(gen)
	if err != nil {
		return nil, err
	}
	sdp, err := l.offer()
	if err != nil {
		l.close()
		return nil, err
	}
	s.signal(proto.Signal{T: proto.SigSDP, Type: "offer", SDP: sdp, Gen: gen})
	_, down := s.signaling()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		select {
		case <-l.open:
			return l, nil
		case <-l.dead:
			return nil, l.deadErr
		case <-s.bye:
			l.close()
			return nil, s.byeErr()
		case <-s.restarts:
			// The receiver lost an older generation; this one is on its way.
		case <-down:
			l.close()
			return nil, errSignalingDown
		case <-cctx.Done():
			l.close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: no connection within %s", errLinkFailed, connectTimeout)
		}
	}
}

// errPeerDone is the bye of a peer that finished successfully.
var errPeerDone = errors.New("peer: the other side finished")

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

// watch runs f on link l, ending it early when the peer asks for a new
// generation or leaves.
func (s *session) watch(ctx context.Context, l *link, f func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		go l.logStats(done)
	}
	go func() {
		for {
			select {
			case g := <-s.restarts:
				if g == 0 || g >= l.gen {
					l.fail(errors.New("peer: the other side asked to reconnect"))
					return
				}
			case <-s.bye:
				if err := s.byeErr(); !errors.Is(err, errPeerDone) {
					cancel(err)
				}
				return // "done": the transfer's own completion decides
			case <-done:
				return
			}
		}
	}()
	err := f(wctx)
	if cause := context.Cause(wctx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}
