package peer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// Result describes a finished transfer.
type Result struct {
	// Path is "direct" or "relay": the one that carried most of the bytes
	// (Carried), or before any moved the last connection's.
	Path string
	// Carried is what the connections carried over direct and over
	// relayed candidate pairs (ICE's counters: both directions, with
	// the encryption's and protocols' overhead).
	Carried PathBytes
	// Bytes is the size of the transfer; Sent what the sender put on the
	// wire (resends included, resumed chunks excluded).
	Bytes, Sent int64
	Files       int
	// Generations is how many connections it took.
	Generations int
	// Roots are the files' BLAKE3 roots (hex), in manifest order.
	Roots []string
	// Transport is what the transfer ran over on the last connection:
	// TransportQUIC or TransportSCTP (the data channel).
	Transport string
	// PacketSize is the size of the packets this side sent on the last
	// connection: over SCTP 1191, or more to a Go peer on the same
	// network; over QUIC their average, which path MTU discovery raises
	// from 1280 towards 1452 bytes.
	PacketSize uint32
	// Stripes is the most connections one generation moved chunks over
	// (PROTOCOL §3.4; 1 without stripes).
	Stripes int
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
	sig, err := sigclient.Dial(ctx, cfg.Server, cfg.Dial)
	if err != nil {
		return nil, err
	}
	created, keys, err := create(ctx, cfg, sig, total)
	if err != nil {
		sig.Close()
		return nil, err
	}
	s := &session{server: cfg.Server, dial: cfg.Dial, role: handshake.Sender, id: keys.SessionID, secret: keys.SessionSecret, conn: sig}
	defer s.Close()
	// left is what the receiver has not committed yet: a generation
	// stripes only while enough is left (PROTOCOL §3.4).
	left := &atomic.Int64{}
	left.Store(total)
	progress := func(p transfer.Progress) {
		left.Store(p.Total - p.Done)
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	sender := &transfer.Sender{Files: files, MaxChunk: cfg.MaxChunk, Agent: Agent, Progress: progress, Mangle: o.Mangle}
	defer sender.Close()
	d := newPeerDriver(cfg, s, &sendRole{sender: sender, engine: o.Engine, total: total, files: len(files)}, o.ReconnectFor)
	d.left = left
	d.ice, d.auditNames = created.ICEServers, created.AuditNames
	for _, f := range files {
		d.names = append(d.names, f.Path)
	}
	d.res.Bytes, d.res.Files = total, len(files)
	err = d.Run(ctx)
	return d.res, err
}

// create makes the ticket, shows the link, waits for the receiver, runs the
// handshake and registers the resume session.
func create(ctx context.Context, cfg *Config, sig *sigclient.Conn, total int64) (proto.ServerMessage, *handshake.Keys, error) {
	created, err := sig.Create(ctx)
	if err != nil {
		return created, nil, err
	}
	if created.MaxBytes > 0 && total > created.MaxBytes {
		return created, nil, fmt.Errorf("%w: %d bytes; this server allows at most %d per transfer", transfer.ErrTooLarge, total, created.MaxBytes)
	}
	tk, err := ticket.New(created.ID)
	if err != nil {
		return created, nil, fmt.Errorf("%w: server sent a bad ticket id", sigclient.ErrProtocol)
	}
	if f := cfg.Events.Link; f != nil {
		f(tk.Link(cfg.Server), time.Unix(created.Expires, 0))
	}
	if f := cfg.Events.Storable; f != nil && created.StoreToken != "" {
		f(tk, created.StoreToken)
	}
	if err := sig.WaitPaired(ctx); err != nil {
		return created, nil, err
	}
	if f := cfg.Events.Paired; f != nil {
		f()
	}
	keys, err := sig.Handshake(ctx, tk.Secret[:], tk.ID, handshake.Sender)
	if err != nil {
		return created, nil, err
	}
	if f := cfg.Events.Phrase; f != nil {
		f(keys.Phrase)
	}
	// Register the resume session before anything can break.
	if err := sig.Send(ctx, proto.ClientMessage{Type: proto.MsgSession, Session: keys.SessionID}); err != nil {
		return created, nil, err
	}
	if m, err := sig.Next(ctx); err != nil || m.Type != proto.MsgSession {
		if err == nil {
			err = fmt.Errorf("%w: expected session ack, got %q", sigclient.ErrProtocol, m.Type)
		}
		return created, nil, err
	}
	return created, keys, nil
}

// sendRole offers every generation and runs the transfer engine's sender.
type sendRole struct {
	sender *transfer.Sender
	// engine, if set, replaces sender.Run (tests).
	engine func(ctx context.Context, c transfer.Conn) error
	total  int64
	files  int
}

func (r *sendRole) offers() bool { return true }

func (r *sendRole) start(ctx context.Context, d *driver) { d.waitInfo(ctx) }

func (r *sendRole) run(ctx context.Context, c transfer.Conn) error {
	if r.engine != nil {
		return r.engine(ctx, c)
	}
	return r.sender.Run(ctx, c)
}

func (r *sendRole) ended(ctx context.Context, d *driver, _ generation, err error) (bool, error) {
	d.res.Sent = r.sender.SentBytes()
	if err == nil {
		d.finish()
		for i := range r.files {
			d.res.Roots = append(d.res.Roots, r.sender.Root(i))
		}
		// Report first: the server reads our messages in order, so the
		// report is in before the bye can make the receiver leave.
		d.report(r.total, proto.OutcomeCompleted, r.files)
		d.signal(proto.Signal{T: proto.SigBye, Reason: byeDone})
		return true, nil
	}
	if errors.Is(err, transfer.ErrConnLost) {
		return false, err
	}
	if ctx.Err() != nil {
		d.cancel()
		return true, ctx.Err()
	}
	d.report(d.res.Sent, outcomeOf(err), r.files)
	d.signal(proto.Signal{T: proto.SigBye, Reason: byeFor(err)})
	return true, err
}

func (r *sendRole) failed(d *driver, err error) error {
	d.report(r.sender.SentBytes(), outcomeOf(err), r.files)
	return err
}

func (r *sendRole) gaveUp(d *driver, err error) error {
	d.report(r.sender.SentBytes(), proto.OutcomeFailed, r.files)
	return err
}

func (r *sendRole) lost(*driver) {}
