// Package clientip finds the address of the client behind an HTTP request,
// honouring X-Forwarded-For only when the request came from a trusted proxy.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses given a set of trusted proxy prefixes.
type Resolver struct {
	trusted []netip.Prefix
}

// New parses trusted proxy CIDRs (bare addresses are /32 or /128).
func New(trusted []string) (*Resolver, error) {
	r := &Resolver{}
	for _, s := range trusted {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("clientip: bad trusted proxy %q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address. X-Forwarded-For is read right to
// left, skipping trusted proxies; the first untrusted hop is the client.
// Without a trusted immediate peer the header is ignored: anyone can send it.
//
// A hop may carry a port ("203.0.113.7:4711", "[2001:db8::7]:443"), as some
// proxies write it. A hop that is not an address at all ("unknown",
// garbage, an empty element) ends the walk with the zero Addr: the client
// is not known, so it must not inherit the trusted proxy's address (and
// with it --metrics-from or --allow-create-from). The zero Addr is in no
// network, and such clients share one rate-limit bucket.
func (r *Resolver) ClientIP(req *http.Request) netip.Addr {
	peer := parseHostPort(req.RemoteAddr)
	if !peer.IsValid() || !r.isTrusted(peer) {
		return peer
	}
	var all []string
	for _, h := range req.Header.Values("X-Forwarded-For") {
		all = append(all, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(all) - 1; i >= 0; i-- {
		client = parseHop(strings.TrimSpace(all[i]))
		if !client.IsValid() || !r.isTrusted(client) {
			break
		}
	}
	return client
}

// parseHop parses one X-Forwarded-For element: an address, optionally with
// a port; the zero Addr if it is neither.
func parseHop(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap()
	}
	return netip.Addr{}
}

// RemoteAddr is the address of the request's immediate peer, believing no
// proxy: the default of services not given a Resolver.
func RemoteAddr(req *http.Request) netip.Addr { return parseHostPort(req.RemoteAddr) }

func parseHostPort(s string) netip.Addr {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
