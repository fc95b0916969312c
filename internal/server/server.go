// Package server composes `ferry serve`: the web client, signaling and the
// bundled TURN relay in one process.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/auth"
	"github.com/ferrydev/ferry/internal/clientip"
	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/metrics"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/ratelimit"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/signaling"
	"github.com/ferrydev/ferry/turn"
	"github.com/ferrydev/ferry/web"
)

// Options are what a test or embedding program may inject; the zero value
// is what `ferry serve` uses.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Store replaces the in-memory ticket store.
	Store signaling.Store
	// Version is shown on the admin page.
	Version string
	// HTTPClient is used to reach the OIDC provider (tests).
	HTTPClient *http.Client
	// Audit replaces the audit log built from the configuration (tests).
	Audit *audit.Log
}

// Server is a configured, bound `ferry serve`.
type Server struct {
	cfg  config.Serve
	log  *slog.Logger
	now  func() time.Time
	base *url.URL // from --public-url, or nil

	http      *http.Server
	httpLn    net.Listener
	sig       *signaling.Server
	turn      *turn.Server
	turnHost  string
	secret    string
	relayIP   net.IP
	resolveIP *clientip.Resolver
	// closers run when Run ends (e.g. the Redis client).
	closers []func() error

	store       signaling.Store
	depot       *depot.Service // nil with --store=false
	storeKey    []byte
	createLimit *ratelimit.Limiter
	metrics     *metrics.Metrics
	audit       *audit.Log
	auth        *auth.Auth
	tokenGuard  *ratelimit.Guard
	createFrom  []netip.Prefix
	metricsFrom []netip.Prefix
	version     string
	started     time.Time
	turnRan     bool
}

// maxHeaderTime bounds the headers alone: they come at once from anything
// but a slow-loris client.
const maxHeaderTime = 10 * time.Second

// New validates cfg and binds every listener, so addresses are known
// before Run.
func New(cfg config.Serve, o Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: o.Logger, now: o.Now, version: o.Version}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.version == "" {
		s.version = "dev"
	}
	s.started = s.now()
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	s.createFrom = prefixes(cfg.AllowCreateFrom)
	s.metricsFrom = prefixes(cfg.MetricsFrom)
	var auditW io.Writer
	if cfg.Audit != "" {
		w, err := audit.Open(cfg.Audit)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, w.Close)
		auditW = w
	}
	s.audit = o.Audit
	if s.audit == nil {
		s.audit = audit.New(auditW, cfg.AuditNames, 200, s.now)
	}
	// Bind first: the OIDC redirect URL may need the real port.
	var err error
	s.httpLn, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	s.closers = append(s.closers, func() error {
		err := s.httpLn.Close()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	})
	s.auth, err = auth.New(context.Background(), auth.Config{
		Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
		RedirectURL: s.callbackURL(), Allowed: cfg.OIDCAllowed, AdminEmails: cfg.AdminEmails,
		AdminToken: cfg.AdminToken, SenderTokens: cfg.SenderTokens, CookieSecret: []byte(cfg.CookieSecret),
		Secure: strings.HasPrefix(cfg.PublicURL, "https:") || cfg.TLSCert != "", Now: s.now,
		HTTPClient: o.HTTPClient, Logger: s.log,
	})
	if err != nil {
		return nil, err
	}
	s.tokenGuard = ratelimit.NewGuard(tokenFailEvery, tokenFailBurst, tokenFailGlobalEvery, tokenFailGlobalBurst, s.now)
	if cfg.PublicURL != "" {
		s.base, _ = url.Parse(strings.TrimSuffix(cfg.PublicURL, "/"))
	}
	if s.resolveIP, err = clientip.New(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	store := o.Store
	if store == nil && cfg.Redis != "" {
		rs, err := signaling.NewRedisStoreWith(context.Background(), signaling.RedisOptions{URL: cfg.Redis, Now: s.now})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, rs.Close)
		store = rs
	}
	if store == nil {
		store = signaling.NewMemoryStore(s.now)
	}
	s.store = store
	createLimit, joinLimit, err := s.limiters()
	if err != nil {
		return nil, err
	}
	s.createLimit = createLimit
	s.storeKey = storeKey(cfg.CookieSecret)
	if err := s.setupStore(context.Background()); err != nil {
		return nil, err
	}
	s.sig, err = signaling.New(signaling.Config{
		Store:       store,
		Instance:    randomID(),
		TicketTTL:   cfg.TicketTTL,
		Now:         s.now,
		Logger:      s.log,
		ClientIP:    s.resolveIP.ClientIP,
		CreateLimit: createLimit,
		JoinLimit:   joinLimit,
		ICE:         s.iceServers,
		Observe:     s.observe,
		MaxBytes:    int64(cfg.MaxTransfer),
		MayCreate:   s.mayCreate,
		AuditNames:  cfg.AuditNames,
		// Credentials last a transfer's allowance, a waiting sender's
		// also its link's remaining lifetime (signaling decides).
		CredentialTTL: cfg.TURN.CredentialTTL,
		IdleTimeout:   cfg.SignalIdleTimeout,
		MaxConnsPerIP: cfg.SignalConnsPerIP,
		StoreToken:    s.liveStoreToken,
	})
	if err != nil {
		return nil, err
	}
	s.secret = cfg.TURN.Secret
	if cfg.TURN.Listen != "" {
		if err := s.setupTURN(); err != nil {
			return nil, err
		}
	}
	s.metrics = metrics.New(s.metricSources())
	// ReadTimeout bounds headers and body together, so a client trickling
	// a body cannot hold a connection; signaling's WebSockets are hijacked,
	// which clears the deadline, so they live on. Responses are small
	// (the page, the admin page, /metrics): no write timeout is needed yet.
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: min(maxHeaderTime, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ok = true
	return s, nil
}

// close releases what New acquired when it fails half way.
func (s *Server) close() {
	for _, c := range s.closers {
		_ = c()
	}
}

func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range list {
		if pr, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pr.Masked())
		}
	}
	return out
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// callbackURL is where the OIDC provider sends users back.
func (s *Server) callbackURL() string {
	if s.base != nil {
		return s.base.String() + "/auth/callback"
	}
	u := s.URL().String() + "/auth/callback"
	if s.cfg.OIDCIssuer != "" {
		s.log.Warn("--oidc-issuer without --public-url: the OIDC redirect URL is " + u)
	}
	return u
}

// mayCreate applies the creation policy: allowed networks, then sign-in.
func (s *Server) mayCreate(r *http.Request, ip netip.Addr) (string, error) {
	if len(s.createFrom) > 0 && !inAny(s.createFrom, ip) {
		return "", fmt.Errorf("%w: address not allowed", signaling.ErrForbidden)
	}
	return s.senderOf(r, ip, signaling.ErrSignInRequired, signaling.ErrRateLimited)
}

// senderOf applies sign-in to a request that creates a link or a stored
// transfer: it returns the signed-in user (or sender token's name, "" when
// sign-in is off), errSignIn, or errRate when wrong tokens came too often.
func (s *Server) senderOf(r *http.Request, ip netip.Addr, errSignIn, errRate error) (string, error) {
	// Guessing sender tokens is throttled like the admin token: the
	// rate limit of creating applies only after this check.
	_, bearer := auth.Bearer(r)
	bearer = bearer && len(s.cfg.SenderTokens) > 0
	if bearer && s.tokenGuard.Wait(ip) > 0 {
		return "", fmt.Errorf("%w: too many wrong tokens", errRate)
	}
	user, ok := s.auth.Sender(r)
	if !ok {
		if bearer {
			s.wrongToken(ip)
		}
		return "", errSignIn
	}
	return user, nil
}

func (s *Server) metricSources() metrics.Sources {
	src := metrics.Sources{
		Connections:      func() float64 { return float64(s.sig.Conns()) },
		AuditWriteErrors: func() float64 { return float64(s.audit.WriteErrors()) },
	}
	if s.depot != nil {
		src.StoredTransfers = func() float64 { n, _ := s.depot.Usage(); return float64(n) }
		src.StoredBytes = func() float64 { _, b := s.depot.Usage(); return float64(b) }
	}
	if s.turn != nil {
		src.Allocations = func() float64 { return float64(s.turn.Allocations()) }
		src.AllocationsCap = func() float64 { return float64(s.cfg.TURN.GlobalCap()) }
		src.RelayedBytes = func() float64 { return float64(s.turn.RelayedBytes()) }
		src.DroppedBytes = func() float64 { return float64(s.turn.DroppedBytes()) }
		src.RefusedBytes = func() float64 { return float64(s.turn.RefusedBytes()) }
	}
	return src
}

// limiters builds the create and join limits: per instance, or with
// --redis shared by all instances, so N instances do not grant N times the
// limit.
func (s *Server) limiters() (create, join *ratelimit.Limiter, err error) {
	var rdb *redis.Client
	if s.cfg.Redis != "" && (s.cfg.CreateLimit > 0 || s.cfg.JoinLimit > 0) {
		opt, err := redis.ParseURL(s.cfg.Redis)
		if err != nil {
			return nil, nil, fmt.Errorf("server: redis URL: %w", err)
		}
		rdb = redis.NewClient(opt)
		s.closers = append(s.closers, rdb.Close)
	}
	perMinute := func(n int, name string) *ratelimit.Limiter {
		if n <= 0 {
			return nil
		}
		every := time.Minute / time.Duration(n)
		if rdb == nil {
			return ratelimit.New(every, n, s.now)
		}
		return ratelimit.NewShared(every, n, s.now, ratelimit.RedisOptions{
			Client: rdb, Prefix: signaling.DefaultRedisPrefix + "rl:" + name + ":", Logger: s.log,
		})
	}
	return perMinute(s.cfg.CreateLimit, "create"), perMinute(s.cfg.JoinLimit, "join"), nil
}

func randomID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) setupTURN() error {
	t := s.cfg.TURN
	if s.secret == "" {
		s.secret = randomID() + randomID()
	}
	s.relayIP = RelayIP(t.RelayIP, t.RelayBind)
	s.turnHost = t.Host
	if s.turnHost == "" && s.base != nil {
		s.turnHost = s.base.Hostname()
	}
	for _, a := range t.Advice() {
		s.log.Warn(a)
	}
	ts, err := turn.New(turn.Config{
		ListenAddr:      t.Listen,
		RelayIP:         s.relayIP,
		RelayBind:       t.RelayBind,
		MinPort:         t.Ports.Min,
		MaxPort:         t.Ports.Max,
		Secret:          s.secret,
		AllowPrivate:    t.AllowPrivate,
		QuotaPerTicket:  t.Quota,
		QuotaPerAddress: t.AddressCap(),
		MaxAllocations:  t.GlobalCap(),
		Alive:           s.linkAlive,
		Bandwidth:       int64(t.Bandwidth),
		Now:             s.now,
		Logger:          s.log,
		Observe:         s.observeTURN,
	})
	if err != nil {
		return err
	}
	s.turn = ts
	s.closers = append(s.closers, func() error {
		if !s.turnRan {
			return ts.Close()
		}
		return nil
	})
	return nil
}

// RelayIP picks the address relays advertise: the configured one, else the
// bind address if specific, else the source address of the default route
// (found without sending anything), else loopback.
func RelayIP(configured, bind string) net.IP {
	if configured != "" {
		return net.ParseIP(configured)
	}
	if a, err := netip.ParseAddr(bind); err == nil && !a.IsUnspecified() {
		return net.IP(a.AsSlice())
	}
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).IP
	}
	return net.IPv4(127, 0, 0, 1)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+proto.SignalPath, s.sig)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /auth/login", s.auth.Login)
	mux.HandleFunc("GET /auth/callback", func(w http.ResponseWriter, r *http.Request) {
		if err := s.auth.Callback(w, r); err != nil {
			s.log.Info("sign-in failed", "err", err)
			http.Error(w, signInMessage(err), http.StatusForbidden)
		}
	})
	mux.HandleFunc("GET /auth/logout", s.auth.Logout)
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		// The page learns the policy before it creates a link.
		_ = json.NewEncoder(w).Encode(struct {
			auth.Me
			MaxBytes int64 `json:"maxBytes,omitempty"`
		}{s.auth.WhoAmI(r), int64(s.cfg.MaxTransfer)})
	})
	if s.depot != nil {
		s.depot.Register(mux)
	}
	s.adminRoutes(mux)
	mux.Handle("/", web.Handler())
	if s.cfg.TLSCert == "" {
		return mux
	}
	// Served over HTTPS: browsers should never try plain HTTP here again.
	// Not includeSubDomains: other hosts under the domain are not ours.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		mux.ServeHTTP(w, r)
	})
}

// signInMessages word auth's sign-in failures for people; provider details
// and account names stay in the log.
var signInMessages = []struct {
	err error
	msg string
}{
	{auth.ErrStale, "the sign-in took too long, or this browser blocks cookies. Try again."},
	{auth.ErrProvider, "the identity provider reported an error. Try again, or ask the operator."},
	{auth.ErrForged, "the answer did not match this sign-in. Start again from the send page."},
	{auth.ErrExchange, "the identity provider's answer could not be checked. Try again, or ask the operator."},
	{auth.ErrNoEmail, "the identity provider did not share an email address."},
	{auth.ErrUnverified, "your email address is not verified with the identity provider."},
	{auth.ErrNotAllowed, "this account may not send files here. Ask the operator."},
}

// signInMessage is what a user sees when sign-in fails.
func signInMessage(err error) string {
	for _, m := range signInMessages {
		if errors.Is(err, m.err) {
			return "Sign-in failed: " + m.msg
		}
	}
	return "Sign-in failed. Try again."
}

// metricsHandler serves /metrics to internal networks or the admin token.
func (s *Server) metricsHandler() http.Handler {
	h := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !inAny(s.metricsFrom, s.resolveIP.ClientIP(r)) {
			if ok, answered := s.adminGate(w, r); !ok {
				if !answered {
					http.Error(w, "forbidden", http.StatusForbidden)
				}
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// URL returns a base URL that reaches this server from this machine.
func (s *Server) URL() *url.URL {
	a := s.httpLn.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, fmt.Sprint(a.Port))}
}

// TURNPort is the bundled relay's port, 0 without one.
func (s *Server) TURNPort() int {
	if s.turn == nil {
		return 0
	}
	return s.turn.Port()
}

// TURNSecret is the shared secret of the bundled relay.
func (s *Server) TURNSecret() string { return s.secret }

// Signaling exposes the signaling service (connection counts in tests).
func (s *Server) Signaling() *signaling.Server { return s.sig }

// linkAlive tells the relay whether a ticket id's link is still in use, so
// that the credentials this server hands out die with their link. Other
// user names were minted by someone holding the TURN secret (coturn-style
// REST clients, `ferry send --turn`) and live until their expiry. If the
// store cannot answer, the relay keeps working (a Redis hiccup must not cut
// running transfers).
func (s *Server) linkAlive(id string) bool {
	if ticket.ValidateID(id) != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok, err := s.sig.LinkAlive(ctx, id)
	if err != nil {
		s.log.Warn("turn: cannot ask whether a link is alive; allowing it", "err", err)
		return true
	}
	return ok
}

// Relay exposes the bundled relay, nil without one.
func (s *Server) Relay() *turn.Server { return s.turn }

// iceServers hands one peer of a ticket the bundled relay with fresh
// credentials valid for ttl. The host is whatever name the client used to reach us,
// unless configured, since that is the name known to work for it.
func (s *Server) iceServers(r *http.Request, ticketID, role string, ttl time.Duration) []proto.ICEServer {
	var out []proto.ICEServer
	if len(s.cfg.TURN.URLs) > 0 {
		user, pass := turn.Credentials(s.secret, ticketID, ttl, s.now())
		out = append(out, turn.ExternalICEServers(s.cfg.TURN.URLs, user, pass)...)
	}
	if s.turn == nil {
		return out
	}
	host := s.turnHost
	if host == "" {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
	}
	if host == "localhost" {
		host = "127.0.0.1" // avoid ::1 when the relay only speaks IPv4
	}
	stun, turnURLs := turn.URLs(host, s.turn.Port())
	user, pass := turn.Credentials(s.secret, ticketID, ttl, s.now())
	return append(out, turn.ICEServers(stun, turnURLs, user, pass)...)
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("signaling", func() error { return s.sig.Run(ctx) })
	// Accept connections only once signaling delivers messages.
	select {
	case <-s.sig.Ready():
	case <-ctx.Done():
	}
	if s.turn != nil {
		s.turnRan = true
		run("turn", func() error { return s.turn.Run(ctx) })
	}
	if s.depot != nil {
		run("stored transfers", func() error { return s.depot.Run(ctx) })
	}
	run("http", func() error {
		var err error
		if s.cfg.TLSCert != "" {
			err = s.http.ServeTLS(s.httpLn, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = s.http.Serve(s.httpLn)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	s.log.Info("ferry serving", "url", s.URL().String(), "turn_port", s.TURNPort(), "relay_ip", s.relayIP)
	<-ctx.Done()
	// WebSockets are hijacked and closed by signaling; what remains are
	// plain requests. http.Server waits up to 5 s for connections that sent
	// nothing yet (often a peer reconnecting), so give a short grace and
	// then close.
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	if err := s.http.Shutdown(sctx); err != nil {
		_ = s.http.Close()
	}
	wg.Wait()
	s.close()
	close(errc)
	return <-errc
}
