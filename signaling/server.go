// Package signaling is ferry's rendezvous server: it pairs two peers by
// ticket id (or resume session id) over WebSockets and relays their opaque,
// end-to-end sealed frames. It never sees the ticket secret, SDP or ICE
// candidates in clear. The protocol is in docs/PROTOCOL.md §2.
package signaling

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/ferrydev/ferry/internal/clientip"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/ratelimit"
	"github.com/ferrydev/ferry/internal/ticket"
)

// Limits per WebSocket pairing, generous for trickle ICE and a few
// reconnection generations, tight enough that the server is no free relay.
const (
	maxRelayMessages = 512
	maxRelayBytes    = 1 << 20
	inboxSize        = maxRelayMessages + 64
	firstMsgTimeout  = 30 * time.Second
	pingInterval     = 20 * time.Second
	pingTimeout      = 10 * time.Second
	writeTimeout     = 10 * time.Second
	slotTTL          = 90 * time.Second
	slotRefresh      = 30 * time.Second
	// clockTick is how often a connection compares its deadlines (ticket
	// expiry, waiting for the peer, idling) with Config.Now, so an injected
	// clock drives them as it drives everything else.
	clockTick = time.Second
	// iceRenewEvery bounds how often one connection gets fresh TURN
	// credentials from an "ice" message; other answers carry none.
	iceRenewEvery = time.Minute
	// maxReportRate is the fastest a transfer is believed to move (10
	// Gbit/s): a report's bytes are capped at this rate times the time
	// since the link was first paired, so a client cannot make the
	// metrics claim more than its pairing could have carried.
	maxReportRate = 1_250_000_000
	// reportMemory is how long the server remembers that a role of a
	// ticket has reported, beyond the ticket's lifetime.
	reportMemory = 24 * time.Hour
	// DefaultIdleTimeout ends a paired connection that sent nothing for
	// this long (Config.IdleTimeout 0).
	DefaultIdleTimeout = 2 * time.Hour
)

// Roles as they appear in messages and slots.
const (
	RoleSender   = "S"
	RoleReceiver = "R"
)

// Config configures a Server. Store, Instance and TicketTTL are required.
type Config struct {
	Store Store
	// Instance names this server among several sharing a Store.
	Instance string
	// TicketTTL is how long a ticket waits for its receiver, and how long a
	// resume session outlives its last connection.
	TicketTTL time.Duration
	// MaxBytes is the transfer size policy passed to clients (0 = none).
	MaxBytes int64
	// CredentialTTL is how long TURN credentials last for a transfer: a
	// receiver's, a resumed peer's and renewed ones live this long, a
	// waiting sender's the ticket's remaining lifetime plus this. Default
	// TicketTTL.
	CredentialTTL time.Duration
	// IdleTimeout closes a paired connection whose client sent nothing for
	// this long (DefaultIdleTimeout if 0; negative: never).
	IdleTimeout time.Duration
	// MaxConnsPerIP bounds concurrent signaling connections per client
	// address (IPv6: per /64); 0 = unlimited.
	MaxConnsPerIP int
	Now           func() time.Time
	Logger        *slog.Logger
	// ClientIP resolves the client address (trusted proxies); RemoteAddr if nil.
	ClientIP func(*http.Request) netip.Addr
	// CreateLimit and JoinLimit rate-limit per client address; nil = unlimited.
	CreateLimit, JoinLimit *ratelimit.Limiter
	// MayCreate applies policy to ticket creation (allowed networks,
	// sign-in); it returns the signed-in user (if any), or an error
	// wrapping ErrForbidden.
	MayCreate func(r *http.Request, ip netip.Addr) (user string, err error)
	// AuditNames asks clients to include file names in their reports.
	AuditNames bool
	// ICE returns ICE servers with fresh credentials for one peer, valid
	// for ttl.
	ICE func(r *http.Request, ticketID, role string, ttl time.Duration) []proto.ICEServer
	// Observe receives events for metrics and the audit log.
	Observe func(Event)
	// StoreToken, if set, returns the token that lets a link's sender store
	// its transfer under the link's id (PROTOCOL.md §6.5); "" if the sender
	// may not store.
	StoreToken func(r *http.Request, ticketID string) string
}

// Server is the signaling service. Mount it as an http.Handler and run it.
type Server struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	conns map[string]*conn
	perIP map[netip.Prefix]int // open connections per client address
	ctx   context.Context      // set by Run: ends every connection on shutdown
	ready chan struct{}
	// handlers counts the handlers running; once stopping (under mu),
	// none start, and Run waits for them, so that every client has its
	// close reason before the process goes on to exit.
	handlers sync.WaitGroup
	stopping bool
}

// New returns a Server; call Run before serving requests.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Instance == "" || cfg.TicketTTL <= 0 {
		return nil, errors.New("signaling: Store, Instance and TicketTTL are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = clientip.RemoteAddr
	}
	if cfg.ICE == nil {
		cfg.ICE = func(*http.Request, string, string, time.Duration) []proto.ICEServer { return nil }
	}
	if cfg.CredentialTTL <= 0 {
		cfg.CredentialTTL = cfg.TicketTTL
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Observe == nil {
		cfg.Observe = func(Event) {}
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, conns: make(map[string]*conn), perIP: make(map[netip.Prefix]int),
		ready: make(chan struct{}),
	}, nil
}

// Run delivers messages from other instances (and this one) to local
// connections until ctx ends; then it closes every connection.
func (s *Server) Run(ctx context.Context) error {
	msgs, err := s.cfg.Store.Subscribe(ctx, s.cfg.Instance)
	if err != nil {
		return fmt.Errorf("signaling: subscribe: %w", err)
	}
	// Connections get their own context, so that ending ctx ends them
	// with ErrShutdown as the cause, the close reason clients act on.
	conns, closeConns := context.WithCancelCause(context.WithoutCancel(ctx))
	defer s.stop(closeConns)
	s.mu.Lock()
	s.ctx = conns
	s.mu.Unlock()
	close(s.ready)
	gc := time.NewTicker(time.Minute)
	defer gc.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return fmt.Errorf("signaling: %w: the store's subscription ended", ErrInternal)
			}
			s.dispatch(m)
		case <-gc.C:
			if g, ok := s.cfg.Store.(interface{ GC() }); ok {
				g.GC()
			}
			s.cfg.CreateLimit.Prune()
			s.cfg.JoinLimit.Prune()
		}
	}
}

// stop ends every connection with ErrShutdown and waits until their
// handlers have returned (each within its write and close timeouts).
func (s *Server) stop(closeConns context.CancelCauseFunc) {
	s.mu.Lock()
	s.stopping = true // no handler is added after this: Wait may start
	s.mu.Unlock()
	closeConns(ErrShutdown)
	s.handlers.Wait()
}

// enter counts a handler in, unless the server is stopping.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.handlers.Add(1)
	return true
}

// Ready is closed once Run is delivering messages.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Conns returns the number of open signaling connections on this instance.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// envelope is a message between connections, possibly across instances.
type envelope struct {
	Kind   string `json:"k"`
	From   string `json:"f"`
	To     string `json:"t"`
	Data   []byte `json:"d,omitempty"`
	Reason string `json:"r,omitempty"`
	// Sent is when a data envelope entered the server, for relay latency.
	Sent int64 `json:"s,omitempty"`
}

const (
	envArrived  = "arrived"
	envPaired   = "paired"
	envData     = "data"
	envGone     = "gone"
	envAbort    = "abort"
	envReplaced = "replaced"
)

func instanceOf(connID string) string {
	for i := len(connID) - 1; i >= 0; i-- {
		if connID[i] == '/' {
			return connID[:i]
		}
	}
	return ""
}

func (s *Server) send(ctx context.Context, e envelope) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	if err := s.cfg.Store.Publish(ctx, instanceOf(e.To), b); err != nil {
		s.log.Warn("signaling: publish failed", "err", err)
	}
}

func (s *Server) dispatch(m []byte) {
	var e envelope
	if err := json.Unmarshal(m, &e); err != nil {
		s.log.Warn("signaling: bad envelope", "err", err)
		return
	}
	s.mu.Lock()
	c := s.conns[e.To]
	s.mu.Unlock()
	if c == nil {
		return // that connection is gone; its peer learns from its "gone"
	}
	select {
	case c.inbox <- e:
	default:
		c.fail(ErrLimit)
	}
}

func newConnID(instance string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return instance + "/" + base64.RawURLEncoding.EncodeToString(b[:])
}

// conn is one client WebSocket.
type conn struct {
	s      *Server
	id     string
	ws     *websocket.Conn
	r      *http.Request
	ip     netip.Addr
	ctx    context.Context
	cancel context.CancelCauseFunc
	inbox  chan envelope
	wg     sync.WaitGroup // the read loop and a ping in flight

	// Set once the first message is handled; read-only afterwards.
	role     string
	key      string // rendezvous: "t:<ticket id>" or "s:<session id>"
	ticketID string
	session  string // resume session id, when key is a session
	started  time.Time
	expires  time.Time // a waiting sender's ticket expiry
	user     string    // signed-in sender, if any

	mu          sync.Mutex
	peer        string    // paired peer connection id
	since       time.Time // when the link was first paired (bounds reports)
	lastClient  time.Time // last message from the client (idle timeout)
	lastICE     time.Time // last TURN credentials handed out
	reported    bool
	contacted   []string
	sessionSent bool
	relayed     int
	relayBytes  int
}

func (c *conn) fail(err error) { c.cancel(err) }

// wsCtx is the context of an operation on the WebSocket, bounded by d.
// It is not cancelled with the connection: coder/websocket closes the
// connection at once when an operation's context ends, even one that has
// just completed, and the close frame with our reason could then never be
// sent. A failing connection ends its operations by closing the WebSocket.
func (c *conn) wsCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.ctx), d)
}

// ServeHTTP upgrades to a WebSocket and runs one client connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.ready:
	default:
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if !s.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.handlers.Done()
	ip := s.cfg.ClientIP(r)
	admitted := s.admit(ip)
	if admitted {
		defer s.leave(ip)
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{proto.Subprotocol}})
	if err != nil {
		return // Accept has written the HTTP error
	}
	if !admitted {
		// A close code rather than an HTTP status: pages cannot read the
		// status of a refused WebSocket handshake.
		s.cfg.Observe(Event{Kind: EventConnRefused, IP: ip})
		code, reason := closeFor(ErrTooManyConns)
		_ = ws.Close(code, reason)
		return
	}
	ws.SetReadLimit(2 * proto.MaxSignalMessage) // we enforce the real limit to give our own close code
	s.mu.Lock()
	base := s.ctx
	s.mu.Unlock()
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(errDone) // (a connection that failed early was never cancelled)
	c := &conn{
		s: s, id: newConnID(s.cfg.Instance), ws: ws, r: r, ip: ip,
		ctx: ctx, cancel: cancel, inbox: make(chan envelope, inboxSize),
	}
	s.mu.Lock()
	s.conns[c.id] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c.id)
		s.mu.Unlock()
	}()

	err = c.run()
	if err != nil && !errors.Is(err, errDone) && !errors.Is(err, errClientClosed) && errors.Is(context.Cause(c.ctx), ErrShutdown) {
		err = ErrShutdown // what failed was cut short by the shutdown (a store call, say)
	}
	c.cleanup(err)
	defer c.wg.Wait() // closing the WebSocket ends them
	if errors.Is(err, errClientClosed) {
		ws.CloseNow()
		return
	}
	code, reason := closeFor(err)
	if err == nil || errors.Is(err, errDone) {
		code, reason = websocket.StatusNormalClosure, ""
	}
	_ = ws.Close(code, reason)
}

// addrKey groups client addresses for the connection cap: one IPv4
// address, or one IPv6 /64 (what one subscriber usually gets). Clients
// whose address is unknown (a garbled X-Forwarded-For) share one key.
func addrKey(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// admit counts a new connection from ip; false if ip is at its cap.
func (s *Server) admit(ip netip.Addr) bool {
	if s.cfg.MaxConnsPerIP <= 0 {
		return true
	}
	k := addrKey(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[k] >= s.cfg.MaxConnsPerIP {
		return false
	}
	s.perIP[k]++
	return true
}

func (s *Server) leave(ip netip.Addr) {
	if s.cfg.MaxConnsPerIP <= 0 {
		return
	}
	k := addrKey(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[k]--; s.perIP[k] <= 0 {
		delete(s.perIP, k)
	}
}

var (
	errClientClosed = errors.New("client closed")
	errDone         = errors.New("done")
)

func (c *conn) run() error {
	if c.ws.Subprotocol() != proto.Subprotocol {
		return ErrVersion
	}
	if c.ctx.Err() != nil { // opened as the server stops
		return context.Cause(c.ctx)
	}
	first, err := c.readFirst()
	if err != nil {
		return err
	}
	if err := c.start(first); err != nil {
		return err
	}
	c.wg.Go(c.readLoop)
	pinging := false
	pinged := make(chan error, 1)
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	refresh := time.NewTicker(slotRefresh)
	defer refresh.Stop()
	tick := time.NewTicker(clockTick)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		case e := <-c.inbox:
			if err := c.handleEnvelope(e); err != nil {
				return err
			}
		case <-ping.C:
			if pinging {
				continue // the last one is still waiting, within pingTimeout
			}
			pinging = true
			c.wg.Go(func() { // waits for the pong while we go on
				pctx, cancel := c.wsCtx(pingTimeout)
				defer cancel()
				pinged <- c.ws.Ping(pctx)
			})
		case err := <-pinged:
			pinging = false
			if err != nil {
				return errClientClosed
			}
		case <-refresh.C:
			held, err := c.s.cfg.Store.RefreshSlot(c.ctx, c.key, c.role, c.id, slotTTL)
			if err == nil && !held {
				return ErrReplaced
			}
			if c.session != "" {
				_ = c.s.cfg.Store.TouchSession(c.ctx, c.session, c.s.cfg.TicketTTL)
			}
			c.keepLink(c.ctx)
		case <-tick.C:
			if err := c.checkDeadlines(c.s.cfg.Now()); err != nil {
				return err
			}
		}
	}
}

// checkDeadlines ends a connection that waited too long: a waiting sender
// when its ticket expires, any other unpaired connection after a ticket
// lifetime, a paired one whose client has been silent for IdleTimeout
// (the server's pings keep answering for a dead client only so long).
func (c *conn) checkDeadlines(now time.Time) error {
	c.mu.Lock()
	paired, last := c.peer != "", c.lastClient
	c.mu.Unlock()
	switch {
	case paired:
		if idle := c.s.cfg.IdleTimeout; idle > 0 && !now.Before(last.Add(idle)) {
			return ErrIdle
		}
	case c.role == RoleSender && c.session == "":
		if !now.Before(c.expires) {
			return ErrExpired
		}
	case !now.Before(c.started.Add(c.s.cfg.TicketTTL)):
		return ErrTimeout
	}
	return nil
}

func (c *conn) readFirst() (proto.ClientMessage, error) {
	// Unlike later reads, this one ends with the connection (see wsCtx):
	// a connection that has said nothing yet loses little if it is dropped
	// without a reason, and a shutdown should not wait for it.
	ctx, cancel := context.WithTimeout(c.ctx, firstMsgTimeout)
	defer cancel()
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		if c.ctx.Err() != nil {
			return proto.ClientMessage{}, context.Cause(c.ctx)
		}
		if ctx.Err() != nil {
			return proto.ClientMessage{}, ErrTimeout
		}
		return proto.ClientMessage{}, errClientClosed
	}
	if len(data) > proto.MaxSignalMessage {
		return proto.ClientMessage{}, ErrTooLarge
	}
	if typ != websocket.MessageText {
		return proto.ClientMessage{}, ErrProtocol
	}
	var m proto.ClientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return proto.ClientMessage{}, ErrProtocol
	}
	return m, nil
}

func (c *conn) writeJSON(m proto.ServerMessage) error {
	b, _ := json.Marshal(m)
	return c.write(websocket.MessageText, b)
}

func (c *conn) write(typ websocket.MessageType, b []byte) error {
	ctx, cancel := c.wsCtx(writeTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		return errClientClosed
	}
	return nil
}

func (c *conn) start(m proto.ClientMessage) error {
	c.started = c.s.cfg.Now()
	c.lastClient, c.lastICE = c.started, c.started
	switch m.Type {
	case proto.MsgCreate:
		return c.create()
	case proto.MsgJoin:
		return c.join(m.ID)
	case proto.MsgResume:
		return c.resume(m.Session, m.Role)
	}
	return ErrProtocol
}

func (c *conn) observe(e Event) {
	e.IP = c.ip
	if e.TicketID == "" {
		e.TicketID = c.ticketID
	}
	if e.Role == "" {
		e.Role = c.role
	}
	if e.User == "" {
		e.User = c.user
	}
	c.s.cfg.Observe(e)
}

func (c *conn) create() error {
	s := c.s
	if s.cfg.MayCreate != nil {
		user, err := s.cfg.MayCreate(c.r, c.ip)
		if err != nil {
			c.observe(Event{Kind: EventRejected, Role: RoleSender, Reason: "policy"})
			return err
		}
		c.user = user
	}
	if !s.cfg.CreateLimit.Allow(c.ip) {
		c.observe(Event{Kind: EventRejected, Reason: "rate"})
		return ErrRateLimited
	}
	now := s.cfg.Now()
	t := Ticket{Created: now, Expires: now.Add(s.cfg.TicketTTL), CreatorIP: c.ip.String()}
	for range 5 {
		t.ID = ticket.NewID()
		err := s.cfg.Store.CreateTicket(c.ctx, t)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrExists) {
			s.log.Error("signaling: create ticket", "err", err)
			return ErrInternal
		}
		t.ID = ""
	}
	if t.ID == "" {
		return ErrInternal
	}
	c.role, c.key, c.ticketID, c.expires = RoleSender, "t:"+t.ID, t.ID, t.Expires
	if _, err := s.cfg.Store.ClaimSlot(c.ctx, c.key, c.role, c.id, slotTTL); err != nil {
		return ErrInternal
	}
	if err := s.cfg.Store.KeepLink(c.ctx, t.ID, t.Expires); err != nil {
		return ErrInternal
	}
	c.observe(Event{Kind: EventCreated})
	var storeToken string
	if s.cfg.StoreToken != nil {
		storeToken = s.cfg.StoreToken(c.r, t.ID)
	}
	return c.writeJSON(proto.ServerMessage{
		StoreToken: storeToken,
		Type:       proto.MsgCreated, ID: t.ID, Expires: t.Expires.Unix(),
		// The sender builds its connection with these once a receiver
		// comes, which may be as late as the ticket's expiry.
		ICEServers: s.cfg.ICE(c.r, t.ID, c.role, t.Expires.Sub(now)+s.cfg.CredentialTTL), MaxBytes: s.cfg.MaxBytes, AuditNames: s.cfg.AuditNames,
	})
}

func (c *conn) join(id string) error {
	s := c.s
	if ticket.ValidateID(id) != nil {
		return ErrNotFound
	}
	if !s.cfg.JoinLimit.Allow(c.ip) {
		c.observe(Event{Kind: EventRejected, TicketID: id, Role: RoleReceiver, Reason: "rate"})
		return ErrRateLimited
	}
	c.role, c.key, c.ticketID = RoleReceiver, "t:"+id, id
	if _, err := s.cfg.Store.ConsumeTicket(c.ctx, id, s.cfg.Now()); err != nil {
		c.observe(Event{Kind: EventRejected, Reason: reasonOf(err)})
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExpired) || errors.Is(err, ErrUsed) {
			return err
		}
		s.log.Error("signaling: consume ticket", "err", err)
		return ErrInternal
	}
	c.observe(Event{Kind: EventJoined})
	if _, err := s.cfg.Store.ClaimSlot(c.ctx, c.key, c.role, c.id, slotTTL); err != nil {
		return ErrInternal
	}
	if err := c.writeJSON(proto.ServerMessage{
		Type: proto.MsgJoined, ICEServers: s.cfg.ICE(c.r, id, c.role, s.cfg.CredentialTTL), MaxBytes: s.cfg.MaxBytes, AuditNames: s.cfg.AuditNames,
	}); err != nil {
		return err
	}
	return c.announce()
}

func (c *conn) resume(sid, role string) error {
	s := c.s
	if len(sid) != 22 || (role != RoleSender && role != RoleReceiver) {
		return ErrProtocol
	}
	if !s.cfg.JoinLimit.Allow(c.ip) {
		return ErrRateLimited
	}
	sess, err := s.cfg.Store.GetSession(c.ctx, sid)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return ErrInternal
	}
	c.role, c.key, c.ticketID, c.session = role, "s:"+sid, sess.TicketID, sid
	if sess.Since != 0 {
		c.since = time.UnixMilli(sess.Since)
	}
	_ = s.cfg.Store.TouchSession(c.ctx, sid, s.cfg.TicketTTL)
	c.keepLink(c.ctx)
	prev, err := s.cfg.Store.ClaimSlot(c.ctx, c.key, c.role, c.id, slotTTL)
	if err != nil {
		return ErrInternal
	}
	if prev != "" && prev != c.id {
		s.send(c.ctx, envelope{Kind: envReplaced, From: c.id, To: prev})
	}
	// Our previous connection may still hold the ticket's slot (it was
	// never a session connection) and look alive for a while after a
	// silent network change; replace it too, so its peer learns at once
	// and resumes instead of waiting for ping timeouts.
	if old, err := s.cfg.Store.Slot(c.ctx, "t:"+sess.TicketID, c.role); err == nil && old != "" && old != c.id {
		s.send(c.ctx, envelope{Kind: envReplaced, From: c.id, To: old})
	}
	c.observe(Event{Kind: EventResumed})
	if err := c.writeJSON(proto.ServerMessage{Type: proto.MsgResumed, ICEServers: s.cfg.ICE(c.r, sess.TicketID, c.role, s.cfg.CredentialTTL)}); err != nil {
		return err
	}
	return c.announce()
}

// announce tells the other role's current holder, if any, that we are here.
// If it is not there yet, it will find us in our slot when it arrives.
func (c *conn) announce() error {
	other := RoleReceiver
	if c.role == RoleReceiver {
		other = RoleSender
	}
	p, err := c.s.cfg.Store.Slot(c.ctx, c.key, other)
	if err != nil {
		return ErrInternal
	}
	if p == "" {
		if c.session == "" {
			// A receiver of a ticket whose sender already left.
			return ErrPeerGone
		}
		return nil
	}
	c.mu.Lock()
	c.contacted = append(c.contacted, p)
	c.mu.Unlock()
	c.s.send(c.ctx, envelope{Kind: envArrived, From: c.id, To: p})
	return nil
}

func (c *conn) pairWith(peer string) (newly bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.peer {
	case peer:
		return false, nil
	case "":
		c.peer = peer
		now := c.s.cfg.Now()
		if c.since.IsZero() {
			c.since = now
		}
		c.lastClient = now // the idle timeout counts from pairing at the earliest
		return true, nil
	}
	// Our peer was replaced by a newer connection: this pairing is stale.
	return false, ErrPeerGone
}

func (c *conn) handleEnvelope(e envelope) error {
	switch e.Kind {
	case envArrived, envPaired:
		newly, err := c.pairWith(e.From)
		if err != nil || !newly {
			return err
		}
		if e.Kind == envArrived {
			c.mu.Lock()
			c.contacted = append(c.contacted, e.From)
			c.mu.Unlock()
			c.s.send(c.ctx, envelope{Kind: envPaired, From: c.id, To: e.From})
		}
		if c.role == RoleReceiver {
			c.observe(Event{Kind: EventPaired, Latency: c.s.cfg.Now().Sub(c.started)})
		}
		return c.writeJSON(proto.ServerMessage{Type: proto.MsgPaired})
	case envData:
		if c.peerIs(e.From) {
			if err := c.write(websocket.MessageBinary, e.Data); err != nil {
				return err
			}
			if e.Sent != 0 {
				c.observe(Event{Kind: EventRelayed, Latency: time.Since(time.Unix(0, e.Sent))})
			}
		}
	case envGone:
		if c.peerIs(e.From) {
			return ErrPeerGone
		}
	case envAbort:
		if c.peerIs(e.From) {
			if e.Reason == proto.AbortWrongKey {
				return ErrWrongKey
			}
			return ErrCanceled
		}
	case envReplaced:
		return ErrReplaced
	}
	return nil
}

func (c *conn) peerIs(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer != "" && c.peer == id
}

func (c *conn) readLoop() {
	for {
		// Ends when the WebSocket closes (see wsCtx).
		typ, data, err := c.ws.Read(context.WithoutCancel(c.ctx))
		if err != nil {
			if c.ctx.Err() == nil {
				c.fail(errClientClosed)
			}
			return
		}
		if len(data) > proto.MaxSignalMessage {
			c.fail(ErrTooLarge)
			return
		}
		if err := c.handleClient(typ, data); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *conn) handleClient(typ websocket.MessageType, data []byte) error {
	c.mu.Lock()
	peer := c.peer
	c.lastClient = c.s.cfg.Now()
	c.mu.Unlock()
	if typ == websocket.MessageBinary {
		if peer == "" {
			return ErrProtocol
		}
		c.mu.Lock()
		c.relayed++
		c.relayBytes += len(data)
		over := c.relayed > maxRelayMessages || c.relayBytes > maxRelayBytes
		c.mu.Unlock()
		if over {
			return ErrLimit
		}
		c.s.send(c.ctx, envelope{Kind: envData, From: c.id, To: peer, Data: data, Sent: time.Now().UnixNano()})
		return nil
	}
	var m proto.ClientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return ErrProtocol
	}
	switch m.Type {
	case proto.MsgSession:
		return c.registerSession(m.Session, peer)
	case proto.MsgAbort:
		if peer == "" {
			return ErrProtocol
		}
		c.s.send(c.ctx, envelope{Kind: envAbort, From: c.id, To: peer, Reason: m.Reason})
		if c.session != "" {
			_ = c.s.cfg.Store.DeleteSession(c.ctx, c.session)
		}
		_ = c.s.cfg.Store.EndLink(c.ctx, c.ticketID) // its relay credentials die with it
		if m.Reason == proto.AbortWrongKey {
			c.observe(Event{Kind: EventWrongKey})
			return ErrWrongKey
		}
		c.observe(Event{Kind: EventCanceled})
		return errDone
	case proto.MsgReport:
		c.report(m, peer)
		return nil
	case proto.MsgICE:
		// Always answered: pages use "ice" as a liveness probe. Fresh
		// credentials only for a paired connection, at most once per
		// iceRenewEvery; a waiting sender has its ticket's.
		var ice []proto.ICEServer
		now := c.s.cfg.Now()
		c.mu.Lock()
		renew := peer != "" && !now.Before(c.lastICE.Add(iceRenewEvery))
		if renew {
			c.lastICE = now
		}
		c.mu.Unlock()
		if renew {
			ice = c.s.cfg.ICE(c.r, c.ticketID, c.role, c.s.cfg.CredentialTTL)
		}
		return c.writeJSON(proto.ServerMessage{Type: proto.MsgICE, ICEServers: ice})
	}
	return ErrProtocol
}

func (c *conn) registerSession(sid, peer string) error {
	c.mu.Lock()
	already := c.sessionSent
	c.sessionSent = true
	c.mu.Unlock()
	if c.role != RoleSender || peer == "" || already || c.session != "" || len(sid) != 22 {
		return ErrProtocol
	}
	if _, err := base64.RawURLEncoding.DecodeString(sid); err != nil {
		return ErrProtocol
	}
	c.mu.Lock()
	since := c.since.UnixMilli()
	c.mu.Unlock()
	err := c.s.cfg.Store.PutSession(c.ctx, Session{ID: sid, TicketID: c.ticketID, Since: since}, c.s.cfg.TicketTTL)
	if err != nil && !errors.Is(err, ErrExists) {
		return ErrInternal
	}
	c.keepLink(c.ctx)
	return c.writeJSON(proto.ServerMessage{Type: proto.MsgSession})
}

// report passes a peer's end-of-transfer report on, once per role of a
// ticket and only from a paired connection; others are ignored
// (PROTOCOL.md §2.5). What the client claims is bounded by what the server
// knows, since it feeds the metrics and the audit log.
func (c *conn) report(m proto.ClientMessage, peer string) {
	c.mu.Lock()
	first := !c.reported && peer != ""
	if first {
		c.reported = true
	}
	since := c.since
	c.mu.Unlock()
	if !first {
		return
	}
	// The store remembers across connections and instances that this
	// role of the ticket reported: a slot nobody else ever claims.
	prev, err := c.s.cfg.Store.ClaimSlot(c.ctx, "r:"+c.ticketID, c.role, c.id, c.s.cfg.TicketTTL+reportMemory)
	if err != nil || prev != "" {
		return
	}
	e := Event{Kind: EventReport, Files: max(m.Files, 0), Outcome: proto.OutcomeFailed}
	switch m.Path {
	case proto.PathDirect, proto.PathRelay:
		e.Path = m.Path
	}
	switch m.Outcome {
	case proto.OutcomeCompleted, proto.OutcomeCanceled:
		e.Outcome = m.Outcome
	}
	limit := int64(maxReportRate * max(c.s.cfg.Now().Sub(since), 0).Seconds())
	if c.s.cfg.MaxBytes > 0 {
		limit = min(limit, c.s.cfg.MaxBytes)
	}
	e.Bytes = min(max(m.Bytes, 0), limit)
	if c.s.cfg.AuditNames {
		e.Names = capNames(m.Names)
	}
	c.observe(e)
}

// capNames keeps the names that fit in proto.MaxReportNames, as clients do.
func capNames(names []string) []string {
	total := 0
	for i, n := range names {
		total += len(n) + 4 // quotes, comma, some escaping
		if total > proto.MaxReportNames {
			return names[:i]
		}
	}
	return names
}

// keepLink extends the life of the connection's link (TURN credentials
// work while it lives): for as long as a resume session lives once the link
// has one, else for as long as this connection's slot.
func (c *conn) keepLink(ctx context.Context) {
	if c.ticketID == "" {
		return
	}
	d := slotTTL
	c.mu.Lock()
	if c.session != "" || c.sessionSent {
		d = c.s.cfg.TicketTTL
	}
	c.mu.Unlock()
	_ = c.s.cfg.Store.KeepLink(ctx, c.ticketID, c.s.cfg.Now().Add(d))
}

// LinkAlive reports whether the link of ticket id is still in use: waiting
// for its receiver, or with a connection or resume session. A relay asks it
// before allocating for the link's credentials.
func (s *Server) LinkAlive(ctx context.Context, id string) (bool, error) {
	return s.cfg.Store.LinkAlive(ctx, id)
}

// cleanup releases what the connection held and tells whoever it talked to.
func (c *conn) cleanup(cause error) {
	if c.key == "" {
		return
	}
	// The connection context is done; use a fresh one for the store.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := c.s.cfg.Store
	_ = st.ReleaseSlot(ctx, c.key, c.role, c.id)
	c.mu.Lock()
	peer, contacted := c.peer, c.contacted
	c.mu.Unlock()
	switch {
	case c.role == RoleSender && c.session == "" && peer == "":
		// An unconsumed ticket dies with its sender, and so does its link.
		_ = st.DeleteTicket(ctx, c.ticketID)
		_ = st.EndLink(ctx, c.ticketID)
		if errors.Is(cause, ErrExpired) {
			c.observe(Event{Kind: EventExpired})
		}
	case errors.Is(cause, ErrWrongKey):
		_ = st.EndLink(ctx, c.ticketID)
	case c.session != "":
		_ = st.TouchSession(ctx, c.session, c.s.cfg.TicketTTL)
		c.keepLink(ctx)
	case peer != "":
		c.keepLink(ctx)
	}
	seen := map[string]bool{}
	for _, p := range append(contacted, peer) {
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		c.s.send(ctx, envelope{Kind: envGone, From: c.id, To: p})
	}
	if !errors.Is(cause, errClientClosed) && !errors.Is(cause, errDone) {
		c.s.log.Debug("signaling: connection closed", "role", c.role, "err", cause)
	}
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "unknown"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrUsed):
		return "used"
	}
	return "error"
}
