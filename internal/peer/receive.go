package peer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// ReceiveOptions configure Receive.
type ReceiveOptions struct {
	// Dir is where files go; the resume state lives there too.
	Dir   string
	Force bool
	// Confirm sees the manifest first; an error declines.
	Confirm  func(*proto.Manifest) error
	Progress func(transfer.Progress)
	// ReconnectFor bounds reconnection attempts (0: DefaultReconnectFor).
	ReconnectFor time.Duration
	// Idle bounds the wait for the sender's next message on a working
	// connection (0: transfer.DefaultIdle).
	Idle time.Duration
}

// Receive opens the link (base URL and ticket) and receives into o.Dir. If
// an earlier, interrupted `Receive` of the same ticket left its resume state
// in o.Dir, it reconnects with that session instead of the spent ticket and
// continues from the chunks already verified.
func Receive(ctx context.Context, cfg *Config, base *url.URL, tk ticket.Ticket, o ReceiveOptions) (*Result, error) {
	s := newSession(cfg, handshake.Receiver)
	defer s.close()
	s.ticketID = tk.ID
	state, err := loadState(o.Dir, tk.ID)
	if err != nil {
		return nil, err
	}
	if state != nil {
		s.sessionID, s.sessionSecret = state.SessionID, state.SessionSecret
		if err := s.resume(ctx); err != nil {
			return nil, fmt.Errorf("cannot continue the interrupted transfer: %w", err)
		}
		// We have no connection: ask the sender for a new one right away.
		s.signal(proto.Signal{T: proto.SigRestart, Gen: 0})
	} else {
		if err := s.join(ctx, base, tk); err != nil {
			return nil, err
		}
		if err := saveState(o.Dir, &State{Server: base.String(), TicketID: tk.ID, SessionID: s.sessionID, SessionSecret: s.sessionSecret}); err != nil {
			return nil, err
		}
	}
	if f := cfg.Events.Phrase; f != nil && s.phrase != nil {
		f(s.phrase)
	}
	s.keepSignaling()

	confirm := func(m *proto.Manifest) error {
		for _, f := range m.Files {
			s.names = append(s.names, f.Path)
		}
		if f := cfg.Events.Manifest; f != nil {
			f(m)
		}
		if o.Confirm != nil {
			return o.Confirm(m)
		}
		return nil
	}
	res := &Result{}
	// The session id ties the files a run finished to this transfer, so
	// that running the command again after a crash recognises them.
	recv := &transfer.Receiver{Dir: o.Dir, Force: o.Force, Confirm: confirm, Progress: o.Progress, MaxBytes: s.maxBytes, Idle: o.Idle, Session: s.sessionID}
	// Report before telling the sender: once it hears "complete" it leaves,
	// and the server then closes our signaling connection too.
	recv.BeforeComplete = func() {
		m := recv.Manifest()
		s.report(res.Path, m.TotalSize, proto.OutcomeCompleted, len(m.Files))
	}
	defer recv.Close()
	reconnectFor := o.ReconnectFor
	if reconnectFor <= 0 {
		reconnectFor = DefaultReconnectFor
	}
	gen := 0
	var lostAt time.Time
	var lastErr error
	for {
		if !lostAt.IsZero() && time.Since(lostAt) > reconnectFor {
			return res, fmt.Errorf("%w (gave up after %s): %v; run the same command again to continue", ErrSessionLost, reconnectFor, lastErr)
		}
		if err := s.ensureSignaling(ctx); err != nil {
			return res, err
		}
		l, err := s.connectReceiver(ctx, gen)
		if err != nil {
			if fatal(err) {
				if ctx.Err() != nil {
					s.cancel()
				}
				return res, err
			}
			lastErr = err
			if lostAt.IsZero() {
				lostAt = time.Now()
			}
			s.reconnecting(err)
			s.signal(proto.Signal{T: proto.SigRestart, Gen: gen})
			continue
		}
		gen = l.gen
		res.Generations++
		res.Path, res.PacketSize = l.path(), l.packetSize()
		s.emitConnected(l)
		err = s.watch(ctx, l, func(ctx context.Context) error { return recv.Run(ctx, l.conn()) })
		if m := recv.Manifest(); m != nil {
			res.Bytes, res.Files = m.TotalSize, len(m.Files)
		}
		if err == nil {
			res.Roots = recv.Roots()
			removeState(o.Dir, tk.ID)
			s.stopSignaling()
			// Keep the channel up until the sender has our "complete" and
			// closes, or says goodbye. Detached channels report the close
			// only to a reader, so keep reading.
			c := l.conn()
			go func() {
				for {
					if _, err := c.Recv(); err != nil {
						return
					}
				}
			}()
			select {
			case <-l.dead:
			case <-s.bye:
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
			return res, nil
		}
		if errors.Is(err, transfer.ErrDiskFull) {
			// Keep the resume state and leave without a bye: the sender
			// waits for us as for a lost connection.
			return res, fmt.Errorf("%w; free some space and run the same command again within %s to continue from where it stopped (the sender is waiting)",
				err, DefaultReconnectFor)
		}
		if errors.Is(err, transfer.ErrReceivedChanged) {
			// Like a full disk: keep the resume state, say nothing to the
			// sender, so the same command can continue once the person
			// decided (moved the file away, or --force to fetch it again).
			return res, fmt.Errorf("%w; then run the same command again within %s to continue (the sender is waiting)", err, DefaultReconnectFor)
		}
		if errors.Is(err, transfer.ErrIdle) {
			// A sender that keeps the connection but sends nothing would
			// keep us forever, and reconnecting could repeat that. Keep the
			// resume state and leave without a bye, so a sender that was
			// only stuck can still be resumed.
			return res, fmt.Errorf("%w; run the same command again to continue from where it stopped", err)
		}
		if !errors.Is(err, transfer.ErrConnLost) {
			if ctx.Err() != nil {
				s.cancel()
				return res, ctx.Err()
			}
			if !resumable(err) {
				removeState(o.Dir, tk.ID)
				recv.ForgetFinished()
			}
			if !errors.Is(err, transfer.ErrCanceled) && !errors.Is(err, errPeerDone) {
				s.signal(proto.Signal{T: proto.SigBye, Reason: byeFor(err)})
			}
			s.report(res.Path, res.Bytes, outcomeOf(err), res.Files)
			return res, err
		}
		lastErr, lostAt = err, time.Now()
		s.reconnecting(err)
		s.signal(proto.Signal{T: proto.SigRestart, Gen: gen})
	}
}

// resumable errors leave the resume state in place for another attempt.
func resumable(err error) bool {
	return errors.Is(err, transfer.ErrConnLost) || errors.Is(err, ErrSessionLost) || errors.Is(err, transfer.ErrCanceled)
}

// join consumes the ticket and runs the first handshake.
func (s *session) join(ctx context.Context, base *url.URL, tk ticket.Ticket) error {
	sig, err := sigclient.Dial(ctx, base, s.cfg.Dial)
	if err != nil {
		return err
	}
	joined, err := sig.Join(ctx, tk.ID)
	if err == nil {
		err = sig.WaitPaired(ctx)
	}
	if err != nil {
		sig.Close()
		return err
	}
	s.maxBytes, s.auditNames = joined.MaxBytes, joined.AuditNames
	if f := s.cfg.Events.Paired; f != nil {
		f()
	}
	keys, err := sig.Handshake(ctx, tk.Secret[:], tk.ID, handshake.Receiver)
	if err != nil {
		sig.Close()
		return err
	}
	s.established(sig, keys, joined.ICEServers)
	return nil
}

// connectReceiver waits for the sender's offer of a generation newer than
// gen, answers it and waits for the data channel.
func (s *session) connectReceiver(ctx context.Context, gen int) (*link, error) {
	_, down := s.signaling()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var l *link
	for {
		select {
		case m := <-s.offers:
			if m.Gen <= gen {
				continue // stale
			}
			if l != nil {
				l.close()
			}
			var err error
			if l, err = s.newLink(m.Gen); err != nil {
				return nil, err
			}
			sdp, err := l.answer(m.SDP)
			if err != nil {
				l.close()
				return nil, fmt.Errorf("bad offer: %w", err)
			}
			s.signal(proto.Signal{T: proto.SigSDP, Type: "answer", SDP: sdp, Gen: m.Gen})
			gen = m.Gen
		case <-openOf(l):
			return l, nil
		case <-deadOf(l):
			return nil, l.deadErr
		case <-s.bye:
			if l != nil {
				l.close()
			}
			return nil, s.byeErr()
		case <-down:
			if l != nil {
				l.close()
			}
			return nil, errSignalingDown
		case <-cctx.Done():
			if l != nil {
				l.close()
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: no connection within %s", errLinkFailed, connectTimeout)
		}
	}
}

func openOf(l *link) <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.open
}

func deadOf(l *link) <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.dead
}
