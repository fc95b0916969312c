// Package sigclient is the Go peer's side of signaling: a WebSocket to the
// server (docs/PROTOCOL.md §2), the HELLO/CONFIRM handshake and sealed
// peer-to-peer messages (§3).
package sigclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/proto"
)

// Errors mapped from the server's close codes (PROTOCOL §2.7). Their
// wording for people belongs to the edge (the CLI's describe).
var (
	ErrUnknown     = errors.New("sigclient: unknown link")
	ErrExpired     = errors.New("sigclient: link expired")
	ErrUsed        = errors.New("sigclient: link already used")
	ErrWrongKey    = errors.New("sigclient: key confirmation failed")
	ErrPeerGone    = errors.New("sigclient: peer disconnected")
	ErrCanceled    = errors.New("sigclient: peer canceled")
	ErrRateLimited = errors.New("sigclient: rate limited")
	ErrForbidden   = errors.New("sigclient: refused by policy")
	// ErrSignInRequired and ErrNetwork are the ErrForbidden of a sender
	// who must sign in and of an address the server does not serve
	// (the reason of the 4009 close).
	ErrSignInRequired = fmt.Errorf("%w: sign-in required", ErrForbidden)
	ErrNetwork        = fmt.Errorf("%w: not allowed from this network", ErrForbidden)
	ErrVersion        = errors.New("sigclient: protocol version mismatch")
	ErrTimeout        = errors.New("sigclient: timed out waiting for the peer")
	ErrShutdown       = errors.New("sigclient: server shutting down")
	ErrReplaced       = errors.New("sigclient: session taken over by another connection")
	ErrLimit          = errors.New("sigclient: server limit reached")
	ErrProtocol       = errors.New("sigclient: protocol error")
	ErrClosed         = errors.New("sigclient: connection closed")
)

var byCode = map[websocket.StatusCode]error{
	proto.CloseProtocol:    ErrProtocol,
	proto.CloseVersion:     ErrVersion,
	proto.CloseTooLarge:    ErrProtocol,
	proto.CloseRateLimited: ErrRateLimited,
	proto.CloseNotFound:    ErrUnknown,
	proto.CloseExpired:     ErrExpired,
	proto.CloseUsed:        ErrUsed,
	proto.CloseWrongKey:    ErrWrongKey,
	proto.ClosePeerGone:    ErrPeerGone,
	proto.CloseForbidden:   ErrForbidden,
	proto.CloseTimeout:     ErrTimeout,
	proto.CloseCanceled:    ErrCanceled,
	proto.CloseShutdown:    ErrShutdown,
	proto.CloseLimit:       ErrLimit,
	proto.CloseTaken:       ErrReplaced,
}

// closeErr turns a read error into one of the errors above.
func closeErr(err error) error {
	code := websocket.CloseStatus(err)
	if code == proto.CloseForbidden {
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			switch ce.Reason {
			case proto.ForbiddenSignIn:
				return ErrSignInRequired
			case proto.ForbiddenNetwork:
				return ErrNetwork
			}
		}
	}
	if e, ok := byCode[code]; ok {
		return e
	}
	if code == websocket.StatusNormalClosure || code == websocket.StatusGoingAway {
		return ErrClosed
	}
	return fmt.Errorf("%w: %v", ErrClosed, err)
}

// Conn is one signaling WebSocket.
type Conn struct {
	ws *websocket.Conn

	text   chan proto.ServerMessage
	binary chan []byte
	ice    chan proto.ServerMessage // answers to ICE, apart: nobody may be reading text
	done   chan struct{}

	mu  sync.Mutex
	err error

	keys *handshake.Keys
	// sendMu makes sealing and writing one step: the peer accepts sealed
	// frames only in counter order.
	sendMu sync.Mutex
}

// SignalURL returns the WebSocket URL for a server base URL.
func SignalURL(base *url.URL) string {
	u := *base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + proto.SignalPath
	u.Fragment, u.RawQuery = "", ""
	return u.String()
}

// Options configure Dial.
type Options struct {
	HTTPClient *http.Client
	Header     http.Header
	// Subprotocol overrides the offered subprotocol (tests only).
	Subprotocol string
}

// Dial connects to the server at base (e.g. http://localhost:8080).
func Dial(ctx context.Context, base *url.URL, o Options) (*Conn, error) {
	sub := o.Subprotocol
	if sub == "" {
		sub = proto.Subprotocol
	}
	ws, _, err := websocket.Dial(ctx, SignalURL(base), &websocket.DialOptions{
		HTTPClient: o.HTTPClient, HTTPHeader: o.Header, Subprotocols: []string{sub},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot reach the ferry server at %s: %w", base.Redacted(), err)
	}
	ws.SetReadLimit(2 * proto.MaxSignalMessage)
	c := &Conn{
		ws:     ws,
		text:   make(chan proto.ServerMessage, 16),
		binary: make(chan []byte, 1024),
		ice:    make(chan proto.ServerMessage, 1),
		done:   make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.setErr(closeErr(err))
			return
		}
		if typ == websocket.MessageBinary {
			c.binary <- data
			continue
		}
		var m proto.ServerMessage
		if err := json.Unmarshal(data, &m); err != nil {
			c.setErr(ErrProtocol)
			c.ws.CloseNow()
			return
		}
		if m.Type == proto.MsgICE {
			select { // the newest answer; an unawaited one never blocks reading
			case <-c.ice:
			default:
			}
			c.ice <- m
			continue
		}
		c.text <- m
	}
}

func (c *Conn) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

// Err returns why the connection ended, or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection normally.
func (c *Conn) Close() error {
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	return err
}

// Ping checks that the server still answers on this connection, and
// closes it if not within ctx: after a network change (a new public
// address, another uplink) a TCP connection can hang without any error for
// many minutes, and the caller would rather reconnect.
func (c *Conn) Ping(ctx context.Context) error {
	if err := c.ws.Ping(ctx); err != nil {
		c.setErr(fmt.Errorf("%w: the server did not answer a ping: %v", ErrClosed, err))
		_ = c.ws.CloseNow()
		<-c.done
		return c.Err()
	}
	return nil
}

// Send sends a text message to the server.
func (c *Conn) Send(ctx context.Context, m proto.ClientMessage) error {
	b, _ := json.Marshal(m)
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return c.deadErr(ctx, err)
	}
	return nil
}

// deadErr is the error of a failed write. A write fails as soon as the
// connection is closed, which may be before the read loop has taken the
// server's close reason (a refusal such as ErrRateLimited): wait for it a
// moment, since the read loop ends with the connection.
func (c *Conn) deadErr(ctx context.Context, err error) error {
	t := time.NewTimer(closeReasonWait)
	defer t.Stop()
	select {
	case <-c.done:
		return c.Err()
	case <-t.C:
	case <-ctx.Done():
	}
	return fmt.Errorf("%w: %v", ErrClosed, err)
}

// closeReasonWait bounds how long a failed write waits for the read loop
// to take the close reason.
const closeReasonWait = time.Second

// SendFrame sends one binary peer frame.
func (c *Conn) SendFrame(ctx context.Context, b []byte) error {
	if err := c.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		return c.deadErr(ctx, err)
	}
	return nil
}

// ICE asks the server for fresh ICE servers (PROTOCOL §2.6); the answer
// also shows the connection is alive, and asking keeps a paired connection
// from being closed as idle. Servers renew credentials at most once a
// minute, so the answer may have none.
func (c *Conn) ICE(ctx context.Context) ([]proto.ICEServer, error) {
	select { // an answer nobody waited for is stale
	case <-c.ice:
	default:
	}
	if err := c.Send(ctx, proto.ClientMessage{Type: proto.MsgICE}); err != nil {
		return nil, err
	}
	select {
	case m := <-c.ice:
		return m.ICEServers, nil
	case <-c.done:
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Next returns the next server message.
func (c *Conn) Next(ctx context.Context) (proto.ServerMessage, error) {
	select {
	case m := <-c.text:
		return m, nil
	case <-c.done:
		select { // drain what arrived before the close
		case m := <-c.text:
			return m, nil
		default:
		}
		return proto.ServerMessage{}, c.Err()
	case <-ctx.Done():
		return proto.ServerMessage{}, ctx.Err()
	}
}

// NextFrame returns the next binary peer frame.
func (c *Conn) NextFrame(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.binary:
		return b, nil
	case <-c.done:
		select {
		case b := <-c.binary:
			return b, nil
		default:
		}
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// expect sends m and waits for a reply of type want.
func (c *Conn) expect(ctx context.Context, m proto.ClientMessage, want string) (proto.ServerMessage, error) {
	if err := c.Send(ctx, m); err != nil {
		return proto.ServerMessage{}, err
	}
	r, err := c.Next(ctx)
	if err != nil {
		return r, err
	}
	if r.Type != want {
		return r, fmt.Errorf("%w: got %q, want %q", ErrProtocol, r.Type, want)
	}
	return r, nil
}

// Create asks for a new ticket.
func (c *Conn) Create(ctx context.Context) (proto.ServerMessage, error) {
	return c.expect(ctx, proto.ClientMessage{Type: proto.MsgCreate}, proto.MsgCreated)
}

// Join consumes ticket id.
func (c *Conn) Join(ctx context.Context, id string) (proto.ServerMessage, error) {
	return c.expect(ctx, proto.ClientMessage{Type: proto.MsgJoin, ID: id}, proto.MsgJoined)
}

// Resume reconnects to a resume session in role ("S" or "R").
func (c *Conn) Resume(ctx context.Context, sid, role string) (proto.ServerMessage, error) {
	return c.expect(ctx, proto.ClientMessage{Type: proto.MsgResume, Session: sid, Role: role}, proto.MsgResumed)
}

// WaitPaired waits until the server pairs us with the other peer.
func (c *Conn) WaitPaired(ctx context.Context) error {
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return err
		}
		if m.Type == proto.MsgPaired {
			return nil
		}
	}
}

// Handshake runs HELLO/CONFIRM (§3.1-3.2) with the peer. On a confirmation
// failure it tells the server to burn the ticket and returns ErrWrongKey.
func (c *Conn) Handshake(ctx context.Context, ikm []byte, contextID string, role handshake.Role) (*handshake.Keys, error) {
	hello := handshake.NewHello(role)
	if err := c.SendFrame(ctx, hello.Marshal()); err != nil {
		return nil, err
	}
	b, err := c.NextFrame(ctx)
	if err != nil {
		return nil, err
	}
	peer, err := handshake.ParseHello(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	keys, err := handshake.Derive(ikm, contextID, hello, peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if err := c.SendFrame(ctx, keys.Confirm()); err != nil {
		return nil, err
	}
	b, err = c.NextFrame(ctx)
	if err != nil {
		return nil, err
	}
	if err := keys.CheckConfirm(b); err != nil {
		_ = c.Send(ctx, proto.ClientMessage{Type: proto.MsgAbort, Reason: proto.AbortWrongKey})
		select { // the server closes us with 4007
		case <-c.done:
		case <-ctx.Done():
		}
		return nil, ErrWrongKey
	}
	c.keys = keys
	return keys, nil
}

// SendSignal seals and sends one peer signaling message.
func (c *Conn) SendSignal(ctx context.Context, s proto.Signal) error {
	if c.keys == nil {
		return handshake.ErrNotConfirmed
	}
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	f, err := c.keys.Seal(js)
	if err != nil {
		return err
	}
	return c.SendFrame(ctx, f)
}

// RecvSignal receives and opens one peer signaling message.
func (c *Conn) RecvSignal(ctx context.Context) (proto.Signal, error) {
	if c.keys == nil {
		return proto.Signal{}, handshake.ErrNotConfirmed
	}
	b, err := c.NextFrame(ctx)
	if err != nil {
		return proto.Signal{}, err
	}
	pt, err := c.keys.Open(b)
	if err != nil {
		return proto.Signal{}, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	var s proto.Signal
	if err := json.Unmarshal(pt, &s); err != nil {
		return proto.Signal{}, fmt.Errorf("%w: bad signal: %v", ErrProtocol, err)
	}
	return s, nil
}
