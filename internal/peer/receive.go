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
	state, err := loadState(o.Dir, tk.ID)
	if err != nil {
		return nil, err
	}
	s := &session{server: cfg.Server, dial: cfg.Dial, role: handshake.Receiver}
	defer s.Close()
	r := &receiveRole{dir: o.Dir, ticketID: tk.ID, resumed: state != nil}
	d := newPeerDriver(cfg, s, r, o.ReconnectFor)
	var maxBytes int64
	var phrase []string
	if state != nil {
		s.id, s.secret = state.SessionID, state.SessionSecret
		if d.ice, err = resume(ctx, s, d.clock, d.log); err != nil {
			return nil, fmt.Errorf("cannot continue the interrupted transfer: %w", err)
		}
	} else {
		var joined proto.ServerMessage
		if joined, phrase, err = join(ctx, cfg, base, tk, s); err != nil {
			return nil, err
		}
		maxBytes, d.auditNames, d.ice = joined.MaxBytes, joined.AuditNames, joined.ICEServers
		if err := saveState(o.Dir, &State{Server: base.String(), TicketID: tk.ID, SessionID: s.id, SessionSecret: s.secret}); err != nil {
			return nil, err
		}
	}
	if f := cfg.Events.Phrase; f != nil && phrase != nil {
		f(phrase)
	}
	confirm := func(m *proto.Manifest) error {
		for _, f := range m.Files {
			d.names = append(d.names, f.Path)
		}
		if f := cfg.Events.Manifest; f != nil {
			f(m)
		}
		if o.Confirm != nil {
			return o.Confirm(m)
		}
		return nil
	}
	// The session id ties the files a run finished to this transfer, so
	// that running the command again after a crash recognises them.
	r.recv = &transfer.Receiver{Dir: o.Dir, Force: o.Force, Confirm: confirm, Progress: o.Progress, MaxBytes: maxBytes, Idle: o.Idle, Session: s.id}
	// Report before telling the sender: once it hears "complete" it leaves,
	// and the server then closes our signaling connection too.
	r.recv.BeforeComplete = func() {
		m := r.recv.Manifest()
		d.report(m.TotalSize, proto.OutcomeCompleted, len(m.Files))
	}
	defer r.recv.Close()
	err = d.Run(ctx)
	return d.res, err
}

// join consumes the ticket and runs the first handshake; s gets the
// connection and the resume session.
func join(ctx context.Context, cfg *Config, base *url.URL, tk ticket.Ticket, s *session) (proto.ServerMessage, []string, error) {
	sig, err := sigclient.Dial(ctx, base, cfg.Dial)
	if err != nil {
		return proto.ServerMessage{}, nil, err
	}
	joined, err := sig.Join(ctx, tk.ID)
	if err == nil {
		err = sig.WaitPaired(ctx)
	}
	if err != nil {
		sig.Close()
		return joined, nil, err
	}
	if f := cfg.Events.Paired; f != nil {
		f()
	}
	keys, err := sig.Handshake(ctx, tk.Secret[:], tk.ID, handshake.Receiver)
	if err != nil {
		sig.Close()
		return joined, nil, err
	}
	s.id, s.secret, s.conn = keys.SessionID, keys.SessionSecret, sig
	return joined, keys.Phrase, nil
}

// receiveRole answers the sender's generations and runs the transfer
// engine's receiver, keeping the resume state until the transfer is over.
type receiveRole struct {
	recv          *transfer.Receiver
	dir, ticketID string
	// resumed: the run continues an interrupted one (from its state).
	resumed bool
}

func (r *receiveRole) offers() bool { return false }

func (r *receiveRole) start(_ context.Context, d *driver) {
	if r.resumed {
		// We have no connection: ask the sender for a new one right away.
		d.signal(proto.Signal{T: proto.SigRestart, Gen: 0})
	}
}

func (r *receiveRole) run(ctx context.Context, c transfer.Conn) error { return r.recv.Run(ctx, c) }

func (r *receiveRole) ended(ctx context.Context, d *driver, g generation, err error) (bool, error) {
	if m := r.recv.Manifest(); m != nil {
		d.res.Bytes, d.res.Files = m.TotalSize, len(m.Files)
	}
	switch {
	case err == nil:
		d.res.Roots = r.recv.Roots()
		removeState(r.dir, r.ticketID)
		d.finish()
		// Keep the channel up until the sender has our "complete" and
		// closes, or says goodbye.
		d.linger(ctx, g)
		return true, nil
	case errors.Is(err, transfer.ErrDiskFull):
		// Keep the resume state and leave without a bye: the sender
		// waits for us as for a lost connection.
		return true, fmt.Errorf("%w; free some space and run the same command again within %s to continue from where it stopped (the sender is waiting)",
			err, DefaultReconnectFor)
	case errors.Is(err, transfer.ErrReceivedChanged):
		// Like a full disk: keep the resume state, say nothing to the
		// sender, so the same command can continue once the person
		// decided (moved the file away, or --force to fetch it again).
		return true, fmt.Errorf("%w; then run the same command again within %s to continue (the sender is waiting)", err, DefaultReconnectFor)
	case errors.Is(err, transfer.ErrIdle):
		// A sender that keeps the connection but sends nothing would
		// keep us forever, and reconnecting could repeat that. Keep the
		// resume state and leave without a bye, so a sender that was
		// only stuck can still be resumed.
		return true, fmt.Errorf("%w; run the same command again to continue from where it stopped", err)
	case errors.Is(err, transfer.ErrConnLost):
		return false, err
	case ctx.Err() != nil:
		d.cancel()
		return true, ctx.Err()
	}
	if !resumable(err) {
		removeState(r.dir, r.ticketID)
		r.recv.ForgetFinished()
	}
	if !errors.Is(err, transfer.ErrCanceled) && !errors.Is(err, errPeerDone) {
		d.signal(proto.Signal{T: proto.SigBye, Reason: byeFor(err)})
	}
	d.report(d.res.Bytes, outcomeOf(err), d.res.Files)
	return true, err
}

// resumable errors leave the resume state in place for another attempt.
func resumable(err error) bool {
	return errors.Is(err, transfer.ErrConnLost) || errors.Is(err, ErrSessionLost) || errors.Is(err, transfer.ErrCanceled)
}

func (r *receiveRole) failed(_ *driver, err error) error { return err }

func (r *receiveRole) gaveUp(_ *driver, err error) error {
	return fmt.Errorf("%w; run the same command again to continue", err)
}

// lost asks the sender for a new generation.
func (r *receiveRole) lost(d *driver) {
	d.signal(proto.Signal{T: proto.SigRestart, Gen: d.opened})
}
