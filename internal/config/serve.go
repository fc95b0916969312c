package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
)

// Serve is the configuration of `ferry serve`.
type Serve struct {
	Addr      string
	PublicURL string
	TLSCert   string
	TLSKey    string
	TicketTTL time.Duration
	// ReadTimeout bounds the time to read one request, headers and body;
	// IdleTimeout how long a kept-alive connection may wait for the next.
	// WebSocket connections leave HTTP before either applies.
	ReadTimeout time.Duration
	IdleTimeout time.Duration

	CreateLimit    int
	JoinLimit      int
	TrustedProxies List
	// SignalConnsPerIP caps concurrent signaling connections per client
	// address (0: unlimited); SignalIdleTimeout closes paired ones that
	// stay silent that long.
	SignalConnsPerIP  int
	SignalIdleTimeout time.Duration

	LogLevel  string
	LogFormat string

	// Redis, if set, shares tickets and relays signaling between instances.
	Redis string

	// Audit is where audit events go: a file, "-" for stdout, "" for none.
	Audit       string
	AuditNames  bool
	MetricsFrom List

	// Policy.
	MaxTransfer     Bytes
	AllowCreateFrom List

	// Sign-in for senders and the admin page.
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	OIDCAllowed      List
	SenderTokens     List
	AdminToken       string
	AdminEmails      List
	CookieSecret     string

	TURN  TURN
	Store Store
}

// TURN configures the bundled relay, or points clients at external ones.
type TURN struct {
	Listen        string
	Host          string
	RelayIP       string
	RelayBind     string
	Ports         PortRange
	Secret        string
	CredentialTTL time.Duration
	AllowPrivate  bool
	Quota         int
	// IPQuota caps allocations per client IP address; MaxAllocations caps
	// them in all (see GlobalCap).
	IPQuota        int
	MaxAllocations int
	Bandwidth      Bytes
	// URLs are external TURN/STUN servers sharing Secret (TURN REST).
	URLs List
}

// MinSecretLen is the shortest --admin-token and --turn-secret accepted:
// both can be guessed offline or online, so they must be long; 16 random
// characters are far beyond guessing (openssl rand -hex 16 gives 32).
const MinSecretLen = 16

// shortSecret explains a secret that is too short.
func shortSecret(flag string) error {
	return fmt.Errorf("%w: --%s must be at least %d characters (make one with: openssl rand -hex 16)", ErrInvalid, flag, MinSecretLen)
}

// DefaultServe returns the embedded defaults.
func DefaultServe() Serve {
	return Serve{
		Addr:        ":8080",
		TicketTTL:   time.Hour,
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		CreateLimit: 30,
		JoinLimit:   60,
		LogLevel:    "info",
		LogFormat:   "text",
		MetricsFrom: List{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"},

		// Generous for a household or an office behind one NAT address.
		SignalConnsPerIP:  64,
		SignalIdleTimeout: 2 * time.Hour,
		TURN: TURN{
			Listen:         ":3478",
			RelayBind:      "0.0.0.0",
			CredentialTTL:  6 * time.Hour,
			Quota:          32,
			IPQuota:        32,
			MaxAllocations: 1000,
		},
		Store: defaultStore(),
	}
}

// Flags registers c's fields on fs with c's current values as defaults.
func (c *Serve) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address for the web page and signaling")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "external base URL of this server, e.g. https://ferry.example.org (default: taken from each request)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate file (PEM); serve HTTPS when set with --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key file (PEM)")
	fs.DurationVar(&c.TicketTTL, "ticket-ttl", c.TicketTTL, "how long a link stays valid while waiting for its receiver")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "longest time a client may take to send one HTTP request, headers and body (WebSocket connections are not affected)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "how long an idle kept-alive HTTP connection stays open")
	fs.IntVar(&c.CreateLimit, "create-limit", c.CreateLimit, "links one client address may create per minute, counted across all instances with --redis (0: unlimited)")
	fs.IntVar(&c.JoinLimit, "join-limit", c.JoinLimit, "links one client address may open per minute, counted across all instances with --redis (0: unlimited)")
	fs.IntVar(&c.SignalConnsPerIP, "signal-conns-per-ip", c.SignalConnsPerIP, "concurrent signaling connections one client address (IPv6: /64) may hold (0: unlimited)")
	fs.DurationVar(&c.SignalIdleTimeout, "signal-idle-timeout", c.SignalIdleTimeout, "close a paired signaling connection whose client sent nothing for this long")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis URL (redis://host:6379/0) to share tickets between several ferry instances (default: in memory)")
	fs.StringVar(&c.Audit, "audit", c.Audit, "write the audit log (JSON lines) to this file, or - for stdout (default: off)")
	fs.BoolVar(&c.AuditNames, "audit-names", c.AuditNames, "include file names in the audit log (off: names are never recorded)")
	fs.Var(&c.MetricsFrom, "metrics-from", "comma-separated CIDRs that may read /metrics without the admin token")
	fs.Var(&c.MaxTransfer, "max-transfer-size", "largest transfer allowed, e.g. 10GB (0: no limit)")
	fs.Var(&c.AllowCreateFrom, "allow-create-from", "comma-separated CIDRs allowed to create links (default: anywhere); receivers are never restricted")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", c.OIDCIssuer, "OpenID Connect issuer URL; when set, senders must sign in (receivers never do)")
	fs.StringVar(&c.OIDCClientID, "oidc-client-id", c.OIDCClientID, "OpenID Connect client id")
	fs.StringVar(&c.OIDCClientSecret, "oidc-client-secret", c.OIDCClientSecret, "OpenID Connect client secret (prefer the environment variable)")
	fs.Var(&c.OIDCAllowed, "oidc-allowed", "comma-separated emails or @domains allowed to send (default: any signed-in account)")
	fs.Var(&c.SenderTokens, "sender-tokens", "comma-separated bearer tokens that let scripts send without signing in (ferry send --token)")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "token that opens the admin page at /admin, at least 16 characters (prefer the environment variable)")
	fs.Var(&c.AdminEmails, "admin-emails", "comma-separated signed-in emails that may open the admin page")
	fs.StringVar(&c.CookieSecret, "cookie-secret", c.CookieSecret, "secret that signs sign-in cookies; set the same one on every instance (default: random at start-up)")

	c.Store.flags(fs)
	t := &c.TURN
	fs.StringVar(&t.Listen, "turn-listen", t.Listen, "bundled TURN/STUN listen address, UDP and TCP (empty: no bundled TURN)")
	fs.StringVar(&t.Host, "turn-host", t.Host, "host name or IP clients use to reach TURN (default: the host of --public-url or of the request)")
	fs.StringVar(&t.RelayIP, "turn-relay-ip", t.RelayIP, "public IPv4 address the relay advertises (default: the address of the default route); clients may reach the relay over IPv6, but relay addresses are IPv4")
	fs.StringVar(&t.RelayBind, "turn-relay-bind", t.RelayBind, "local IPv4 address relay sockets bind to")
	fs.Var(&t.Ports, "turn-ports", "relay port range, e.g. 49152-65535 (default: any free port)")
	fs.StringVar(&t.Secret, "turn-secret", t.Secret, "TURN REST shared secret, at least 16 characters (default: random at start-up)")
	fs.DurationVar(&t.CredentialTTL, "turn-credential-ttl", t.CredentialTTL, "how long TURN credentials last for a transfer once a link is opened (a waiting sender's also cover the link's remaining lifetime); they die with their link earlier")
	fs.BoolVar(&t.AllowPrivate, "turn-allow-private", t.AllowPrivate, "let the relay reach loopback, private and link-local addresses and this host's own, never its TURN port (tests, LAN-only installs)")
	t.capFlags(fs)
	fs.Var(&t.URLs, "turn-url", "comma-separated external TURN/STUN URLs (turn:host:3478?transport=udp,…) that accept --turn-secret; handed to clients with fresh credentials")
}

// TURNFlags registers the flags of a standalone relay (`ferry turn`),
// named as in `ferry serve` so one set of FERRY_TURN_* variables serves both.
func (t *TURN) TURNFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.Listen, "turn-listen", t.Listen, "TURN/STUN listen address, UDP and TCP")
	fs.StringVar(&t.RelayIP, "turn-relay-ip", t.RelayIP, "public IPv4 address the relay advertises (default: the address of the default route); clients may reach the relay over IPv6, but relay addresses are IPv4")
	fs.StringVar(&t.RelayBind, "turn-relay-bind", t.RelayBind, "local IPv4 address relay sockets bind to")
	fs.Var(&t.Ports, "turn-ports", "relay port range, e.g. 49152-65535 (default: any free port)")
	fs.StringVar(&t.Secret, "turn-secret", t.Secret, "TURN REST shared secret, the same as the ferry servers' --turn-secret (required, at least 16 characters)")
	fs.BoolVar(&t.AllowPrivate, "turn-allow-private", t.AllowPrivate, "let the relay reach loopback, private and link-local addresses and this host's own, never its TURN port")
	t.capFlags(fs)
}

// capFlags registers the relay's caps, shared by `ferry serve` and `ferry turn`.
func (t *TURN) capFlags(fs *flag.FlagSet) {
	fs.IntVar(&t.Quota, "turn-quota", t.Quota, "concurrent relay allocations per link (0: unlimited)")
	fs.IntVar(&t.IPQuota, "turn-ip-quota", t.IPQuota, "concurrent relay allocations per client IP address, at most half of --turn-max-allocations; raise it when many users share one address (0: unlimited)")
	fs.IntVar(&t.MaxAllocations, "turn-max-allocations", t.MaxAllocations, "concurrent relay allocations in all, never more than --turn-ports has ports (0: no cap but the port range)")
	fs.Var(&t.Bandwidth, "turn-bandwidth", "relay bandwidth cap per allocation and direction, bytes/s, e.g. 10MB (0: none)")
}

// GlobalCap is the relay's cap on allocations in all: --turn-max-allocations,
// lowered to the size of --turn-ports when that is smaller, so a full range
// is refused as capacity (and counted) rather than failing port by port.
// 0 means no cap.
func (t *TURN) GlobalCap() int {
	n := t.MaxAllocations
	if t.Ports.Min != 0 {
		size := int(t.Ports.Max) - int(t.Ports.Min) + 1
		if n == 0 || n > size {
			n = size
		}
	}
	return n
}

// AddressCap is the relay's cap on allocations per client address:
// --turn-ip-quota, lowered to half the global cap so that one address (and
// the free links it can make) never holds the whole relay. 0 means no cap.
func (t *TURN) AddressCap() int {
	n := t.IPQuota
	if g := t.GlobalCap(); n > 0 && g > 0 {
		n = min(n, max(1, g/2))
	}
	return n
}

// Advice explains relay caps that work but slow relayed transfers down,
// for the operator's log at start-up: a relayed browser transfer holds up
// to proto.RelayAllocationsPerGeneration allocations, twice as many while
// a connection generation replaces another; below that it stripes over
// fewer connections.
func (t *TURN) Advice() []string {
	need := 2 * proto.RelayAllocationsPerGeneration
	var out []string
	if t.Quota > 0 && t.Quota < need {
		out = append(out, fmt.Sprintf("--turn-quota %d is below %d: a relayed browser transfer takes up to %d relay allocations (%d while it reconnects), so it will use fewer connections and be slower",
			t.Quota, need, proto.RelayAllocationsPerGeneration, need))
	}
	if g := t.GlobalCap(); g > 0 && g < need {
		out = append(out, fmt.Sprintf("relay allocations in all are capped at %d (--turn-max-allocations, at most the --turn-ports range), below %d: a relayed browser transfer will use fewer connections and be slower",
			g, need))
	}
	if c := t.AddressCap(); c > 0 && c < need {
		out = append(out, fmt.Sprintf("relay allocations per client address are capped at %d (--turn-ip-quota, at most half of --turn-max-allocations and of --turn-ports), below %d: a relayed browser transfer between two devices behind one address will use fewer connections and be slower",
			c, need))
	}
	return out
}

// validateRelayAddrs checks --turn-relay-ip and --turn-relay-bind. The
// relay gives IPv4 relay addresses (clients may reach it over IPv4 or
// IPv6): an IPv6 one would be refused to every client that does not ask
// for one, browsers included.
func (t *TURN) validateRelayAddrs() error {
	var errs []error
	if t.RelayIP != "" {
		if a, err := netip.ParseAddr(t.RelayIP); err != nil {
			errs = append(errs, fmt.Errorf("%w: --turn-relay-ip %q is not an IP address", ErrInvalid, t.RelayIP))
		} else if !a.Unmap().Is4() {
			errs = append(errs, fmt.Errorf("%w: --turn-relay-ip %q: the relay's address must be IPv4 (clients may still reach it over IPv6)", ErrInvalid, t.RelayIP))
		}
	}
	if a, err := netip.ParseAddr(t.RelayBind); err != nil {
		errs = append(errs, fmt.Errorf("%w: --turn-relay-bind %q is not an IP address", ErrInvalid, t.RelayBind))
	} else if !a.Unmap().Is4() {
		errs = append(errs, fmt.Errorf("%w: --turn-relay-bind %q: relay sockets bind to an IPv4 address (0.0.0.0 for all)", ErrInvalid, t.RelayBind))
	}
	return errors.Join(errs...)
}

// validateCaps checks the caps shared by both commands.
func (t *TURN) validateCaps() error {
	var errs []error
	for _, c := range []struct {
		name string
		v    int
	}{{"turn-quota", t.Quota}, {"turn-ip-quota", t.IPQuota}, {"turn-max-allocations", t.MaxAllocations}} {
		if c.v < 0 {
			errs = append(errs, fmt.Errorf("%w: --%s must not be negative", ErrInvalid, c.name))
		}
	}
	return errors.Join(errs...)
}

// ValidateStandalone checks a standalone relay's configuration.
func (t *TURN) ValidateStandalone() error {
	var errs []error
	if _, _, err := net.SplitHostPort(t.Listen); err != nil {
		errs = append(errs, fmt.Errorf("%w: --turn-listen %q: %v", ErrInvalid, t.Listen, err))
	}
	if t.Secret == "" {
		errs = append(errs, fmt.Errorf("%w: --turn-secret is required: ferry servers hand out credentials made with it", ErrInvalid))
	} else if len(t.Secret) < MinSecretLen {
		errs = append(errs, shortSecret("turn-secret"))
	}
	errs = append(errs, t.validateRelayAddrs(), t.validateCaps())
	return errors.Join(errs...)
}

// Validate checks the configuration as a whole.
func (c *Serve) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("--addr %q: %v", c.Addr, err)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("--public-url %q must be an http(s) URL like https://ferry.example.org", c.PublicURL)
		}
	}
	if c.Redis != "" {
		if u, err := url.Parse(c.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			bad("--redis %q must be a redis://, rediss:// or unix:// URL", c.Redis)
		}
	}
	for _, list := range []struct {
		name string
		l    List
	}{{"metrics-from", c.MetricsFrom}, {"allow-create-from", c.AllowCreateFrom}} {
		for _, p := range list.l {
			if _, err := netip.ParsePrefix(p); err != nil {
				bad("--%s: %q is not a CIDR like 10.0.0.0/8", list.name, p)
			}
		}
	}
	if c.OIDCIssuer != "" {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			bad("--oidc-issuer %q must be an https URL", c.OIDCIssuer)
		}
		if c.OIDCClientID == "" {
			bad("--oidc-issuer needs --oidc-client-id")
		}
	}
	if c.CookieSecret != "" && len(c.CookieSecret) < 16 {
		bad("--cookie-secret must be at least 16 characters")
	}
	if c.AdminToken != "" && len(c.AdminToken) < MinSecretLen {
		errs = append(errs, shortSecret("admin-token"))
	}
	if c.TURN.Secret != "" && len(c.TURN.Secret) < MinSecretLen {
		errs = append(errs, shortSecret("turn-secret"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("--tls-cert and --tls-key go together")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"ticket-ttl", c.TicketTTL}, {"read-timeout", c.ReadTimeout}, {"idle-timeout", c.IdleTimeout}} {
		if err := positive(d.name, d.d); err != nil {
			errs = append(errs, err)
		}
	}
	if c.CreateLimit < 0 || c.JoinLimit < 0 {
		bad("rate limits must not be negative")
	}
	if c.SignalConnsPerIP < 0 {
		bad("--signal-conns-per-ip must not be negative")
	}
	if err := positive("signal-idle-timeout", c.SignalIdleTimeout); err != nil {
		errs = append(errs, err)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("--trusted-proxies: %q is not a CIDR or address", p)
			}
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("--log-format %q", c.LogFormat)
	}
	c.Store.validate(bad)
	t := c.TURN
	for _, u := range t.URLs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") && !strings.HasPrefix(u, "stun:") {
			bad("--turn-url %q must start with turn:, turns: or stun:", u)
		}
	}
	if len(t.URLs) > 0 && t.Secret == "" {
		bad("--turn-url needs --turn-secret, the external servers' shared secret")
	}
	if t.Listen != "" {
		if _, _, err := net.SplitHostPort(t.Listen); err != nil {
			bad("--turn-listen %q: %v", t.Listen, err)
		}
		if err := t.validateRelayAddrs(); err != nil {
			errs = append(errs, err)
		}
		if err := positive("turn-credential-ttl", t.CredentialTTL); err != nil {
			errs = append(errs, err)
		}
		if err := t.validateCaps(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
