// Package turn is ferry's bundled TURN relay (github.com/pion/turn/v4) with
// TURN REST credentials handed out per ticket, per-ticket allocation quotas,
// an optional bandwidth cap, byte accounting, and a permission filter that
// refuses to relay to loopback, private and link-local addresses.
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

	"github.com/ferrydev/ferry/internal/udpbatch"
	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v4"
)

// Sentinel errors.
var (
	ErrConfig = errors.New("turn: invalid configuration")
	ErrListen = errors.New("turn: cannot listen")
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
	// peers (tests on one machine need it).
	AllowPrivate bool
	// QuotaPerTicket bounds concurrent allocations per ticket (0: none).
	QuotaPerTicket int
	// Bandwidth caps each allocation, bytes per second per direction (0: none).
	Bandwidth int64
	Now       func() time.Time
	Logger    *slog.Logger
	// Observe is told about allocations and relayed bytes.
	Observe func(Event)
}

// Event kinds.
const (
	EventAllocated   = "allocated"   // an allocation was created
	EventReleased    = "released"    // an allocation ended; Bytes is what it relayed
	EventDenied      = "denied"      // a permission to an address was refused
	EventQuota       = "quota"       // an allocation was refused by the quota
	EventAuthFailure = "auth_failed" // bad or expired credentials
)

// Event reports relay activity for metrics and the audit log.
type Event struct {
	Kind     string
	TicketID string
	Bytes    int64
	Peer     netip.Addr
}

// Server is a running relay.
type Server struct {
	cfg    Config
	log    *slog.Logger
	udp    net.PacketConn
	tcp    net.Listener
	server *pionturn.Server

	mu       sync.RWMutex
	perUser  map[string]int          // active allocations per ticket
	byRelay  map[string]*meteredConn // relay address -> conn
	relayed  atomic.Int64
	dropped  atomic.Int64
	refused  atomic.Int64
	allocNow atomic.Int64
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
	s := &Server{cfg: cfg, log: cfg.Logger, perUser: map[string]int{}, byRelay: map[string]*meteredConn{}}
	if err := s.listen(); err != nil {
		return nil, err
	}
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
			udp = udpbatch.Wrap(uc)
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

// RefusedBytes is the total not relayed because the destination was a
// non-allocation port on the relay's own address.
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
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	srv, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm:             Realm,
		AuthHandler:       s.auth,
		QuotaHandler:      s.quota,
		LoggerFactory:     lf,
		PacketConnConfigs: []pionturn.PacketConnConfig{{PacketConn: s.udp, RelayAddressGenerator: gen, PermissionHandler: perm}},
		ListenerConfigs:   []pionturn.ListenerConfig{{Listener: s.tcp, RelayAddressGenerator: gen, PermissionHandler: perm}},
		EventHandler: pionturn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, username, _ string, relay net.Addr, _ int) {
				s.allocated(username, relay)
			},
			OnAllocationDeleted: func(_, _ net.Addr, _, username, _ string) {
				s.released(username)
			},
		},
	})
	if err != nil {
		s.udp.Close()
		s.tcp.Close()
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	s.server = srv
	<-ctx.Done()
	return srv.Close()
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

func (s *Server) auth(username, realm string, _ net.Addr) ([]byte, bool) {
	exp, user, ok := parseUsername(username)
	if !ok || user == "" || !s.cfg.Now().Before(time.Unix(exp, 0)) {
		s.cfg.Observe(Event{Kind: EventAuthFailure, TicketID: user})
		return nil, false
	}
	return pionturn.GenerateAuthKey(username, realm, Password(s.cfg.Secret, username)), true
}

func (s *Server) quota(username, _ string, _ net.Addr) bool {
	if s.cfg.QuotaPerTicket <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[ticketOf(username)] >= s.cfg.QuotaPerTicket {
		s.cfg.Observe(Event{Kind: EventQuota, TicketID: ticketOf(username)})
		return false
	}
	return true
}

func (s *Server) allocated(username string, relay net.Addr) {
	user := ticketOf(username)
	s.mu.Lock()
	s.perUser[user]++
	if c := s.byRelay[relay.String()]; c != nil {
		c.user.Store(&user)
	}
	s.mu.Unlock()
	s.allocNow.Add(1)
	s.cfg.Observe(Event{Kind: EventAllocated, TicketID: user})
}

func (s *Server) released(username string) {
	user := ticketOf(username)
	s.mu.Lock()
	if s.perUser[user]--; s.perUser[user] <= 0 {
		delete(s.perUser, user)
	}
	s.mu.Unlock()
	s.allocNow.Add(-1)
}

// ownRelayOK limits traffic to our own relay IP to our allocations: the
// permission filter has to allow that IP so two peers can relay to each
// other, but permissions are per IP, and without this a client could
// reach every UDP service on the server's address, the TURN port included.
func (s *Server) ownRelayOK(addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || !ua.IP.Equal(s.cfg.RelayIP) {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, live := s.byRelay[ua.String()]
	return live
}

// permit refuses relaying to addresses inside the server's own networks,
// so the relay cannot be used to reach internal services. Relaying between
// two of our own allocations (the relay IP itself) stays allowed.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	if s.cfg.AllowPrivate || peer.Equal(s.cfg.RelayIP) {
		return true
	}
	a, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	if Internal(a.Unmap()) {
		s.cfg.Observe(Event{Kind: EventDenied, Peer: a.Unmap()})
		return false
	}
	return true
}

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

func (g *generator) Validate() error { return g.base.Validate() }

func (g *generator) AllocatePacketConn(network string, port int) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.base.AllocatePacketConn(network, port)
	if err != nil {
		return nil, nil, err
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		pc = udpbatch.Wrap(uc)
	}
	mc := &meteredConn{PacketConn: pc, s: g.s, relay: addr.String()}
	if bw := g.s.cfg.Bandwidth; bw > 0 {
		mc.in = newPolicer(bw, g.s.cfg.Now)
		mc.out = newPolicer(bw, g.s.cfg.Now)
	}
	g.s.mu.Lock()
	g.s.byRelay[mc.relay] = mc
	g.s.mu.Unlock()
	return mc, addr, nil
}

func (g *generator) AllocateConn(network string, port int) (net.Conn, net.Addr, error) {
	return g.base.AllocateConn(network, port)
}

// meteredConn counts relayed bytes and polices bandwidth. It never blocks:
// pion serves every UDP client from one loop, so over-budget packets are
// dropped (as a router would) and congestion control adapts.
type meteredConn struct {
	net.PacketConn
	s       *Server
	relay   string
	user    atomic.Pointer[string]
	bytes   atomic.Int64
	in, out *policer
	closed  atomic.Bool
}

func (c *meteredConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.in.allow(n) {
			if n > 0 {
				c.bytes.Add(int64(n))
				c.s.relayed.Add(int64(n))
			}
			return n, addr, err
		}
		c.s.dropped.Add(int64(n))
	}
}

func (c *meteredConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.s.cfg.AllowPrivate && !c.s.ownRelayOK(addr) {
		c.s.refused.Add(int64(len(p)))
		return len(p), nil // see ownRelayOK
	}
	if !c.out.allow(len(p)) {
		c.s.dropped.Add(int64(len(p)))
		return len(p), nil // dropped by the cap
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if n > 0 {
		c.bytes.Add(int64(n))
		c.s.relayed.Add(int64(n))
	}
	return n, err
}

func (c *meteredConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.s.mu.Lock()
		delete(c.s.byRelay, c.relay)
		c.s.mu.Unlock()
		user := ""
		if u := c.user.Load(); u != nil {
			user = *u
		}
		c.s.cfg.Observe(Event{Kind: EventReleased, TicketID: user, Bytes: c.bytes.Load()})
	}
	return c.PacketConn.Close()
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
