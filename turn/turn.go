// Package turn is ferry's bundled TURN relay (github.com/pion/turn/v5, our
// patched copy in third_party/pion-turn) with
// TURN REST credentials handed out per ticket, allocation caps (per ticket,
// per client address, in all), an optional bandwidth cap, byte accounting,
// and a permission filter that refuses to relay to loopback, private and
// link-local addresses and to the host's own addresses.
package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry/internal/pionlog"
	"github.com/ferrydev/ferry/internal/udpbatch"
	pionturn "github.com/pion/turn/v5"
)

// Sentinel errors.
var (
	ErrConfig = errors.New("turn: invalid configuration")
	ErrListen = errors.New("turn: cannot listen")
	// ErrCapacity refuses an allocation over MaxAllocations (the client
	// sees 508 Insufficient Capacity).
	ErrCapacity = errors.New("turn: relay at capacity")
	// ErrTCPRelay refuses a TCP relay (RFC 6062), which ferry does not offer.
	ErrTCPRelay = errors.New("turn: TCP relays are not offered")
	// ErrFamily refuses a relay of the other address family than the
	// relay address (RFC 6156's REQUESTED-ADDRESS-FAMILY).
	ErrFamily = errors.New("turn: relay address family not offered")
)

// Realm is the TURN realm ferry uses.
const Realm = "ferry"

// Config configures the bundled relay.
type Config struct {
	// ListenAddr is where clients reach the server, UDP and TCP (":3478";
	// port 0 picks a free port that is free for both).
	ListenAddr string
	// RelayIP is the address allocations are advertised at (the server's
	// public IP). RelayBind is the local address relay sockets bind to.
	RelayIP   net.IP
	RelayBind string
	// MinPort/MaxPort bound relay ports (both 0: any free port).
	MinPort, MaxPort uint16
	// Secret is the TURN REST shared secret.
	Secret string
	// AllowPrivate permits relaying to loopback, private and link-local
	// peers, the host's own addresses included (tests on one machine, LAN
	// installs), but never to the relay's own TURN port.
	AllowPrivate bool
	// QuotaPerTicket bounds concurrent allocations per ticket (0: none).
	QuotaPerTicket int
	// QuotaPerAddress bounds concurrent allocations per client IP address
	// (0: none): links are free, so a per-ticket quota alone bounds nothing.
	QuotaPerAddress int
	// MaxAllocations bounds concurrent allocations in all (0: none); each
	// holds a socket and, with a port range, a port.
	MaxAllocations int
	// Alive, if set, says whether the link a ticket id belongs to still
	// exists (or a transfer of it is still going on). A dead link's
	// credentials get no new allocation (486), and its allocations are
	// closed by the next sweep. It is asked only for authenticated
	// allocation requests and by the sweep, and answers are reused for
	// aliveCacheTTL, so it may be a store lookup.
	Alive func(ticketID string) bool
	// SweepEvery is how often dead links' allocations are closed and the
	// host's own addresses are read again (default 10s).
	SweepEvery time.Duration
	// Bandwidth caps each allocation, bytes per second per direction (0: none).
	Bandwidth int64
	Now       func() time.Time
	Logger    *slog.Logger
	// Observe is told about allocations and relayed bytes.
	Observe func(Event)
}

// aliveCacheTTL is how long an answer of Config.Alive is reused: the auth
// handler runs in the relay's read loop, which must not wait on a store
// for every request.
const aliveCacheTTL = 2 * time.Second

// localRefreshMin is how often a permission request may re-read the host's
// addresses (between sweeps), so a floating IP added a moment ago counts.
const localRefreshMin = time.Second

// Event kinds.
const (
	EventAllocated   = "allocated"   // an allocation was created
	EventReleased    = "released"    // an allocation ended; Bytes is what it relayed
	EventDenied      = "denied"      // a permission to an address was refused
	EventQuota       = "quota"       // an allocation was refused by a cap; Cap says which
	EventAuthFailure = "auth_failed" // refused credentials; Reason says why
	EventRevoked     = "revoked"     // an allocation was closed because its link is gone
)

// Caps, for EventQuota.
const (
	CapTicket  = "ticket"  // Config.QuotaPerTicket
	CapAddress = "address" // Config.QuotaPerAddress
	CapGlobal  = "global"  // Config.MaxAllocations
)

// Reasons, for EventAuthFailure.
const (
	ReasonMalformed = "malformed" // not a TURN REST username
	ReasonExpired   = "expired"   // past the expiry in the username
	ReasonLinkGone  = "link_gone" // Config.Alive said no
)

// Event reports relay activity for metrics and the audit log.
type Event struct {
	Kind     string
	TicketID string
	Bytes    int64
	Peer     netip.Addr
	Cap      string // EventQuota
	Reason   string // EventAuthFailure
}

// Server is a running relay.
type Server struct {
	cfg    Config
	log    *slog.Logger
	udp    net.PacketConn
	tcp    net.Listener
	server *pionturn.Server

	relayIP    netip.Addr // cfg.RelayIP, unmapped
	listenPort uint16

	mu      sync.RWMutex
	perUser map[string]int                  // active allocations per ticket
	perAddr map[netip.Addr]int              // active allocations per client IP
	byRelay map[netip.AddrPort]*meteredConn // relay address -> conn
	alive   map[string]aliveAnswer          // Config.Alive's recent answers

	local    atomic.Pointer[localAddrs]
	localMu  sync.Mutex // one re-read at a time
	relayed  atomic.Int64
	dropped  atomic.Int64
	refused  atomic.Int64
	allocNow atomic.Int64
	sockets  atomic.Int64 // open relay sockets, for MaxAllocations
}

type aliveAnswer struct {
	ok    bool
	until time.Time
}

// New validates cfg and binds the listeners; Run serves.
func New(cfg Config) (*Server, error) {
	if cfg.Secret == "" || cfg.RelayIP == nil {
		return nil, fmt.Errorf("%w: secret and relay IP are required", ErrConfig)
	}
	if cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("%w: relay port range %d-%d", ErrConfig, cfg.MinPort, cfg.MaxPort)
	}
	if cfg.RelayBind == "" {
		cfg.RelayBind = "0.0.0.0"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observe == nil {
		cfg.Observe = func(Event) {}
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 10 * time.Second
	}
	if cfg.QuotaPerTicket < 0 || cfg.QuotaPerAddress < 0 || cfg.MaxAllocations < 0 {
		return nil, fmt.Errorf("%w: negative allocation cap", ErrConfig)
	}
	relayIP, ok := netip.AddrFromSlice(cfg.RelayIP)
	if !ok {
		return nil, fmt.Errorf("%w: relay IP %v", ErrConfig, cfg.RelayIP)
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, relayIP: relayIP.Unmap(),
		perUser: map[string]int{}, perAddr: map[netip.Addr]int{},
		byRelay: map[netip.AddrPort]*meteredConn{}, alive: map[string]aliveAnswer{},
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	s.listenPort = uint16(s.Port())
	s.local.Store(&localAddrs{set: map[netip.Addr]struct{}{s.relayIP: {}}}) // if the first read fails
	s.refreshLocal()
	return s, nil
}

// listen binds UDP and TCP on the same port.
func (s *Server) listen() error {
	host, port, err := net.SplitHostPort(s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("%w: listen address %q: %v", ErrConfig, s.cfg.ListenAddr, err)
	}
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("%w: udp %s: %v", ErrListen, s.cfg.ListenAddr, err)
		}
		// One socket carries every client's packets: batch its syscalls.
		var udp net.PacketConn = pc
		if uc, ok := pc.(*net.UDPConn); ok {
			udp = udpbatch.WrapBusy(uc)
		}
		p := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err != nil {
			udp.Close()
			if port == "0" {
				continue // the TCP side of that port was taken; try another
			}
			return fmt.Errorf("%w: tcp %s: %v", ErrListen, s.cfg.ListenAddr, err)
		}
		s.udp, s.tcp = udp, tcp
		return nil
	}
	return fmt.Errorf("%w: no port free for both UDP and TCP", ErrListen)
}

// Port is the port clients connect to.
func (s *Server) Port() int { return s.udp.LocalAddr().(*net.UDPAddr).Port }

// Allocations is the number of live allocations.
func (s *Server) Allocations() int64 { return s.allocNow.Load() }

// RelayedBytes is the total relayed so far.
func (s *Server) RelayedBytes() int64 { return s.relayed.Load() }

// DroppedBytes is the total dropped by the bandwidth cap.
func (s *Server) DroppedBytes() int64 { return s.dropped.Load() }

// Close releases the listeners of a server that will not Run.
func (s *Server) Close() error {
	return errors.Join(s.udp.Close(), s.tcp.Close())
}

// RefusedBytes is the total not relayed because the destination was one of
// the host's own addresses and not an allocation (see route).
func (s *Server) RefusedBytes() int64 { return s.refused.Load() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var base pionturn.RelayAddressGenerator
	if s.cfg.MinPort != 0 {
		base = &pionturn.RelayAddressGeneratorPortRange{
			RelayAddress: s.cfg.RelayIP, Address: s.cfg.RelayBind,
			MinPort: s.cfg.MinPort, MaxPort: s.cfg.MaxPort,
		}
	} else {
		base = &pionturn.RelayAddressGeneratorStatic{RelayAddress: s.cfg.RelayIP, Address: s.cfg.RelayBind}
	}
	gen := &generator{base: base, s: s}
	perm := s.permit
	srv, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: pionlog.New(s.log, slog.LevelWarn), // pion's logs are ours
		// A request without REQUESTED-ADDRESS-FAMILY gets an IPv4 relay
		// (RFC 6156), as RelayIP is, whatever the family of the client's
		// address: otherwise pion follows a dual-stack listener's client
		// and asks for a udp6 socket on an IPv4 RelayBind.
		StrictAddressFamily: true,
		PacketConnConfigs:   []pionturn.PacketConnConfig{{PacketConn: s.udp, RelayAddressGenerator: gen, PermissionHandler: perm}},
		ListenerConfigs:     []pionturn.ListenerConfig{{Listener: s.tcp, RelayAddressGenerator: gen, PermissionHandler: perm}},
		EventHandler: pionturn.EventHandler{
			OnAllocationCreated: func(src, _ net.Addr, _, username, _ string, relay net.Addr, _ int) {
				s.allocated(username, src, relay)
			},
			OnAllocationDeleted: func(src, _ net.Addr, _, username, _ string) {
				s.released(username, src)
			},
		},
	})
	if err != nil {
		s.udp.Close()
		s.tcp.Close()
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	s.server = srv
	tick := time.NewTicker(s.cfg.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return srv.Close()
		case <-tick.C:
			s.Sweep()
		}
	}
}

// Sweep re-reads the host's own addresses and closes the allocations of
// links that Config.Alive says are gone, so credentials that outlive their
// link cannot keep sockets and ports. Run calls it every SweepEvery.
func (s *Server) Sweep() {
	s.refreshLocal()
	if s.cfg.Alive == nil {
		return
	}
	s.mu.RLock()
	byTicket := map[string][]*meteredConn{}
	for _, c := range s.byRelay {
		if u := c.user.Load(); u != nil {
			byTicket[*u] = append(byTicket[*u], c)
		}
	}
	s.mu.RUnlock()
	now := s.cfg.Now()
	for id, conns := range byTicket {
		ok := s.cfg.Alive(id)
		s.mu.Lock()
		s.alive[id] = aliveAnswer{ok: ok, until: now.Add(aliveCacheTTL)}
		s.mu.Unlock()
		if ok {
			continue
		}
		for _, c := range conns {
			// pion's read on the relay socket fails, and it deletes the
			// allocation (OnAllocationDeleted keeps the counts).
			_ = c.Close()
			s.cfg.Observe(Event{Kind: EventRevoked, TicketID: id})
		}
		s.log.Info("turn: closed the allocations of a link that is gone", "ticket", id, "allocations", len(conns))
	}
	s.mu.Lock()
	for id, a := range s.alive {
		if !now.Before(a.until) {
			delete(s.alive, id)
		}
	}
	s.mu.Unlock()
}

// knownDead reports whether a recent answer of Config.Alive said the link
// is gone. It never asks: the auth handler runs before pion checks the
// message integrity, so anyone could make it ask for any id.
func (s *Server) knownDead(id string) bool {
	if s.cfg.Alive == nil {
		return false
	}
	now := s.cfg.Now()
	s.mu.RLock()
	a, ok := s.alive[id]
	s.mu.RUnlock()
	return ok && !a.ok && now.Before(a.until)
}

// linkAlive asks Config.Alive, reusing a recent answer.
func (s *Server) linkAlive(id string) bool {
	if s.cfg.Alive == nil {
		return true
	}
	now := s.cfg.Now()
	s.mu.RLock()
	a, ok := s.alive[id]
	s.mu.RUnlock()
	if ok && now.Before(a.until) {
		return a.ok
	}
	live := s.cfg.Alive(id)
	s.mu.Lock()
	s.alive[id] = aliveAnswer{ok: live, until: now.Add(aliveCacheTTL)}
	s.mu.Unlock()
	return live
}

// ticketOf returns the user part of a TURN REST username "expiry:user".
func ticketOf(username string) string {
	for i := 0; i < len(username); i++ {
		if username[i] == ':' {
			return username[i+1:]
		}
	}
	return ""
}

func (s *Server) auth(ra *pionturn.RequestAttributes) (userID string, key []byte, ok bool) {
	username, realm := ra.Username, ra.Realm
	exp, user, ok := parseUsername(username)
	reason := ""
	switch {
	case !ok || user == "":
		reason = ReasonMalformed
	case !s.cfg.Now().Before(time.Unix(exp, 0)):
		reason = ReasonExpired
	case s.knownDead(user):
		reason = ReasonLinkGone
	}
	if reason != "" {
		s.cfg.Observe(Event{Kind: EventAuthFailure, TicketID: user, Reason: reason})
		return "", nil, false
	}
	// The user ID pion reports allocations under is the whole username.
	return username, pionturn.GenerateAuthKey(username, realm, Password(s.cfg.Secret, username)), true
}

// clientIP is the IP address of a TURN client (UDP or TCP).
func clientIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// quota applies the per-ticket and per-address caps (486 Allocation Quota
// Reached); the global cap is the generator's (508 Insufficient Capacity).
// Counts move when pion reports an allocation, so TCP clients allocating
// at the same instant may overshoot by a few; UDP requests are handled one
// at a time.
func (s *Server) quota(username, _ string, src net.Addr) bool {
	user, ip := ticketOf(username), clientIP(src)
	// The request is authenticated by now (pion checks the message
	// integrity before asking us), so only holders of real credentials
	// can make us ask Config.Alive.
	if !s.linkAlive(user) {
		s.cfg.Observe(Event{Kind: EventAuthFailure, TicketID: user, Reason: ReasonLinkGone})
		return false
	}
	s.mu.RLock()
	over := ""
	switch {
	case s.cfg.QuotaPerTicket > 0 && s.perUser[user] >= s.cfg.QuotaPerTicket:
		over = CapTicket
	case s.cfg.QuotaPerAddress > 0 && s.perAddr[ip] >= s.cfg.QuotaPerAddress:
		over = CapAddress
	}
	s.mu.RUnlock()
	if over != "" {
		s.cfg.Observe(Event{Kind: EventQuota, TicketID: user, Cap: over, Peer: ip})
		return false
	}
	return true
}

func (s *Server) allocated(username string, src, relay net.Addr) {
	user := ticketOf(username)
	s.mu.Lock()
	s.perUser[user]++
	s.perAddr[clientIP(src)]++
	if ua, ok := relay.(*net.UDPAddr); ok {
		if c := s.byRelay[relayKey(ua)]; c != nil {
			c.user.Store(&user)
		}
	}
	s.mu.Unlock()
	s.allocNow.Add(1)
	s.cfg.Observe(Event{Kind: EventAllocated, TicketID: user})
}

func (s *Server) released(username string, src net.Addr) {
	user, ip := ticketOf(username), clientIP(src)
	s.mu.Lock()
	if s.perUser[user]--; s.perUser[user] <= 0 {
		delete(s.perUser, user)
	}
	if s.perAddr[ip]--; s.perAddr[ip] <= 0 {
		delete(s.perAddr, ip)
	}
	s.mu.Unlock()
	s.allocNow.Add(-1)
}

func relayKey(a *net.UDPAddr) netip.AddrPort {
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// The relay must not become a way into the host it runs on: relayed
// packets leave from the host itself, so they would reach UDP services
// bound to any of its addresses (0.0.0.0 listeners on secondary or
// floating IPs, the TURN port itself: allocations inside allocations).
// So every address of every local interface counts as the host's own,
// not only the advertised relay IP. The set is re-read on every sweep and,
// at most once a second, when a permission is asked for, so the packet
// path only looks it up.
//
// Policy for a packet to one of the host's own addresses:
//   - to the relay IP at a live allocation's port: allowed (two peers
//     relaying to each other);
//   - with AllowPrivate (tests with peers on the same machine, LAN-only
//     installs): allowed, except to the TURN listen port;
//   - otherwise refused.

// localAddrs is a snapshot of the host's own addresses.
type localAddrs struct {
	set map[netip.Addr]struct{}
	at  time.Time
}

// refreshLocal re-reads the host's addresses. On failure it keeps the
// previous set (an address that is gone stays refused a little longer).
func (s *Server) refreshLocal() {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		s.log.Warn("turn: cannot read the host's addresses", "err", err)
		return
	}
	set := make(map[netip.Addr]struct{}, len(addrs)+1)
	set[s.relayIP] = struct{}{}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				set[ip.Unmap()] = struct{}{}
			}
		}
	}
	s.local.Store(&localAddrs{set: set, at: s.cfg.Now()})
}

// isLocal reports whether a (unmapped) is one of the host's own addresses.
// The whole loopback range and the unspecified address reach the host too.
func (s *Server) isLocal(a netip.Addr) bool {
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	_, ok := s.local.Load().set[a]
	return ok
}

// route is the per-packet check on the relay's way out (see the policy
// above): whether a packet may go to addr and, when addr is another relay
// of this server, that relay, to which it is handed without the kernel. It
// only reads the cached address set and the relays.
func (s *Server) route(addr net.Addr) (relay *meteredConn, ok bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil, false
	}
	ap := relayKey(ua)
	if ap.Addr() == s.relayIP {
		s.mu.RLock()
		relay = s.byRelay[ap]
		s.mu.RUnlock()
		if relay != nil {
			return relay, true
		}
	}
	if !s.isLocal(ap.Addr()) {
		return nil, true
	}
	return nil, s.cfg.AllowPrivate && ap.Port() != s.listenPort
}

// permit refuses relaying to addresses inside the server's own networks
// and to the host's own addresses, so the relay cannot be used to reach
// internal services. The relay IP stays allowed (two peers relaying to
// each other); route limits it to allocation ports.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	a, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	a = a.Unmap()
	deny := func() bool {
		s.cfg.Observe(Event{Kind: EventDenied, Peer: a})
		return false
	}
	if a.IsMulticast() || a.IsUnspecified() || isBroadcast(a) {
		return deny() // never a peer, whatever the configuration
	}
	if a == s.relayIP || s.cfg.AllowPrivate {
		return true
	}
	if Internal(a) {
		return deny()
	}
	if l := s.local.Load(); s.cfg.Now().Sub(l.at) >= localRefreshMin {
		s.refreshLocal()
	}
	if s.isLocal(a) {
		return deny()
	}
	return true
}

func isBroadcast(a netip.Addr) bool { return a.Is4() && a.As4() == [4]byte{255, 255, 255, 255} }

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Internal reports whether a is loopback, private, link-local, unspecified,
// multicast or shared (CGNAT) address space.
func Internal(a netip.Addr) bool {
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a) ||
		(a.Is4() && a.As4()[0] == 0) || a == netip.IPv4Unspecified() || a.Is4() && a.As4() == [4]byte{255, 255, 255, 255}
}

// generator wraps relay sockets to meter and cap them.
type generator struct {
	base pionturn.RelayAddressGenerator
	s    *Server
}

var _ pionturn.LocalDeliverer = (*meteredConn)(nil)

func (g *generator) Validate() error { return g.base.Validate() }

func (g *generator) AllocatePacketConn(conf pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if v4 := g.s.cfg.RelayIP.To4() != nil; v4 != (conf.Network == "udp4") {
		return nil, nil, ErrFamily
	}
	// The global cap counts relay sockets, reserved before one is opened,
	// so it holds exactly even for concurrent TCP clients; pion answers
	// the error with 508.
	if n := g.s.sockets.Add(1); g.s.cfg.MaxAllocations > 0 && n > int64(g.s.cfg.MaxAllocations) {
		g.s.sockets.Add(-1)
		g.s.cfg.Observe(Event{Kind: EventQuota, Cap: CapGlobal})
		return nil, nil, ErrCapacity
	}
	pc, addr, err := g.base.AllocatePacketConn(conf)
	if err != nil {
		g.s.sockets.Add(-1)
		return nil, nil, err
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		pc = udpbatch.Wrap(uc)
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		pc.Close()
		g.s.sockets.Add(-1)
		return nil, nil, fmt.Errorf("%w: relay address %v", ErrConfig, addr)
	}
	mc := &meteredConn{PacketConn: pc, s: g.s, relay: relayKey(ua), addr: ua}
	if bw := g.s.cfg.Bandwidth; bw > 0 {
		mc.in = newPolicer(bw, g.s.cfg.Now)
		mc.out = newPolicer(bw, g.s.cfg.Now)
	}
	g.s.mu.Lock()
	g.s.byRelay[mc.relay] = mc
	g.s.mu.Unlock()
	return mc, addr, nil
}

// TCP relays (RFC 6062) are not offered: peers reach each other over UDP,
// and a TCP relay would let credentials open connections to any host.
func (g *generator) AllocateListener(pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

func (g *generator) AllocateConn(pionturn.AllocateConnConfig) (net.Conn, error) {
	return nil, ErrTCPRelay
}

// meteredConn counts relayed bytes and polices bandwidth. It never blocks:
// pion serves every UDP client from one loop, so over-budget packets are
// dropped (as a router would) and congestion control adapts.
type meteredConn struct {
	net.PacketConn
	s       *Server
	relay   netip.AddrPort
	addr    *net.UDPAddr // relay, as its peers see it
	local   atomic.Pointer[func(p []byte, from net.Addr)]
	user    atomic.Pointer[string]
	bytes   atomic.Int64
	in, out *policer
	closed  atomic.Bool
}

func (c *meteredConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.in.allow(n) {
			c.count(n)
			return n, addr, err
		}
		c.s.dropped.Add(int64(n))
	}
}

func (c *meteredConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.closed.Load() {
		// Revoked: the socket may not be closed yet (its batcher's drain),
		// but nothing more leaves it, by the kernel or by deliver.
		return 0, net.ErrClosed
	}
	relay, ok := c.s.route(addr)
	if !ok {
		c.s.refused.Add(int64(len(p)))
		return len(p), nil // see route
	}
	if !c.out.allow(len(p)) {
		c.s.dropped.Add(int64(len(p)))
		return len(p), nil // dropped by the cap
	}
	var n int
	var err error
	switch {
	case relay == nil:
		n, err = c.PacketConn.WriteTo(p, addr)
	case relay.closed.Load():
		// Closed since route: its port is no allocation any more, and
		// the kernel path would skip route's check for that.
		c.s.refused.Add(int64(len(p)))
		return len(p), nil
	case relay.deliver(p, c.addr):
		n = len(p)
	default: // its allocation is not set up yet, or its client is over TCP
		n, err = c.PacketConn.WriteTo(p, addr)
	}
	c.count(n)
	return n, err
}

// count adds n relayed bytes to this relay's total and the server's.
func (c *meteredConn) count(n int) {
	if n > 0 {
		c.bytes.Add(int64(n))
		c.s.relayed.Add(int64(n))
	}
}

// SetLocalDelivery takes the function that relays a packet to this relay's
// client as if this socket had read it (pion's LocalDeliverer).
func (c *meteredConn) SetLocalDelivery(f func(p []byte, from net.Addr)) {
	c.local.Store(&f)
}

// deliver hands p, from the relay at from, to this relay's allocation
// without the kernel, metered and policed as ReadFrom would; false if it
// cannot: no delivery function yet (being set up, or a client over TCP,
// whose window must not hold up the sender), and the packet then goes
// through the kernel.
func (c *meteredConn) deliver(p []byte, from *net.UDPAddr) bool {
	f := c.local.Load()
	if f == nil {
		return false
	}
	if !c.in.allow(len(p)) {
		c.s.dropped.Add(int64(len(p)))
		return true
	}
	c.count(len(p))
	(*f)(p, from)
	return true
}

func (c *meteredConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.s.mu.Lock()
		delete(c.s.byRelay, c.relay)
		c.s.mu.Unlock()
		c.s.sockets.Add(-1)
		user := ""
		if u := c.user.Load(); u != nil {
			user = *u
		}
		c.s.cfg.Observe(Event{Kind: EventReleased, TicketID: user, Bytes: c.bytes.Load()})
		return c.PacketConn.Close()
	}
	return nil // closed by the sweep, then by pion's allocation
}

// policer is a token bucket in bytes; one second of burst.
type policer struct {
	rate   float64
	now    func() time.Time
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newPolicer(rate int64, now func() time.Time) *policer {
	return &policer{rate: float64(rate), now: now, tokens: float64(rate), last: now()}
}

func (p *policer) allow(n int) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	p.tokens = min(p.rate, p.tokens+t.Sub(p.last).Seconds()*p.rate)
	p.last = t
	if p.tokens < float64(n) {
		return false
	}
	p.tokens -= float64(n)
	return true
}
