package netlab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// NAT is how a home router translates addresses.
type NAT int

const (
	// Cone is Linux MASQUERADE: it keeps the source port when it can, so
	// one local socket gets the same public address and port towards every
	// destination (endpoint-independent mapping). Filtering is still
	// address- and port-dependent, as on most home routers: unsolicited
	// packets are dropped, so hole punching needs both sides to send.
	Cone NAT = iota
	// Symmetric is MASQUERADE --random: a new random public port per
	// destination, so the address learned from STUN is useless to the peer.
	Symmetric
)

func (n NAT) String() string {
	if n == Symmetric {
		return "symmetric"
	}
	return "cone"
}

// HomeSpec describes a home network: one host behind its own NAT router.
type HomeSpec struct {
	Name string // short, e.g. "a"
	NAT  NAT
	// BlockUDP drops every UDP packet the router would forward (a
	// corporate or hotel network): only TCP gets out.
	BlockUDP bool
}

// Home is a built home network.
type Home struct {
	Spec HomeSpec
	// Host is the computer in the home; Router its NAT router.
	Host, Router *NS
	// HostIP is the host's LAN address, PublicIP the router's WAN address.
	HostIP, PublicIP netip.Addr
}

// Addresses. The public segment uses 198.18.0.0/24 (benchmarking space, not
// "private"), so ferry's TURN permission filter treats it as the internet;
// homes use 192.168.1.0/24 each, like most home routers.
const (
	PublicNet  = "198.18.0.0/24"
	ServerIP   = "198.18.0.1"
	coreIP     = "198.18.0.254"
	homeLAN    = "192.168.1.0/24"
	homeGW     = "192.168.1.1"
	wanDev     = "wan"
	lanDev     = "lan"
	hostDev    = "eth0"
	bridgeDev  = "br0"
	routerBase = 10  // routers are 198.18.0.11, .12, ...
	publicBase = 100 // extra public hosts are 198.18.0.101, ...
)

// Internet is a public segment (a bridge in the "pub" namespace, which
// also hosts the servers at ServerIP) with homes and public hosts on it.
type Internet struct {
	Lab *Lab
	// Pub is the namespace of the public servers (ferry serve, coturn).
	Pub   *NS
	Homes []*Home
	// nextPublic numbers extra public hosts.
	nextPublic int
}

// Internet builds the public segment and one home per spec (at most 50).
func (l *Lab) Internet(homes ...HomeSpec) *Internet {
	l.t.Helper()
	in := &Internet{Lab: l, Pub: l.NS("pub")}
	in.Pub.IP("link", "add", "name", bridgeDev, "type", "bridge")
	in.Pub.Up(bridgeDev, ServerIP+"/24")
	// The rest of the internet: a default gateway that silently drops what
	// it is sent (it does not forward). Without it, sending to an address
	// outside the lab (a peer's private host candidate) fails at once with
	// "network unreachable", which no server on the internet sees; coturn,
	// for one, closes the allocation when its relay socket gets that error.
	core := l.NS("core")
	in.plug(core, hostDev, "up-core")
	core.Up(hostDev, coreIP+"/24")
	in.Pub.IP("route", "add", "default", "via", coreIP)
	for i, spec := range homes {
		in.Homes = append(in.Homes, in.addHome(i, spec))
	}
	return in
}

// Home returns the home named name.
func (in *Internet) Home(name string) *Home {
	for _, h := range in.Homes {
		if h.Spec.Name == name {
			return h
		}
	}
	in.Lab.t.Fatalf("netlab: no home %q", name)
	return nil
}

// plug connects namespace ns to the public bridge; its end is called dev.
func (in *Internet) plug(ns *NS, dev, port string) {
	Veth(in.Pub, port, ns, dev)
	in.Pub.IP("link", "set", port, "master", bridgeDev)
	in.Pub.IP("link", "set", port, "up")
}

func (in *Internet) addHome(i int, spec HomeSpec) *Home {
	t := in.Lab.t
	t.Helper()
	h := &Home{
		Spec:     spec,
		Router:   in.Lab.NS("router-" + spec.Name),
		Host:     in.Lab.NS("home-" + spec.Name),
		PublicIP: netip.MustParseAddr("198.18.0." + strconv.Itoa(routerBase+1+i)),
		HostIP:   netip.MustParseAddr("192.168.1." + strconv.Itoa(10*(i+1))),
	}
	r := h.Router
	in.plug(r, wanDev, "up-"+spec.Name)
	r.Up(wanDev, h.PublicIP.String()+"/24")
	r.IP("route", "add", "default", "via", coreIP)
	Veth(r, lanDev, h.Host, hostDev)
	r.Up(lanDev, homeGW+"/24")
	h.Host.Up(hostDev, h.HostIP.String()+"/24")
	h.Host.IP("route", "add", "default", "via", homeGW)
	r.Sysctl("net.ipv4.ip_forward", "1")

	masq := []string{"-t", "nat", "-A", "POSTROUTING", "-o", wanDev, "-j", "MASQUERADE"}
	if spec.NAT == Symmetric {
		masq = append(masq, "--random")
	}
	r.IPTables(masq...)
	// A home router's firewall: nothing unsolicited gets in, neither to the
	// router (which also keeps a stray packet from creating a conntrack
	// entry that would steal a port the NAT wants to keep) nor to the LAN.
	// Like most home routers, do not pick up TCP connections in the middle
	// (a mapping lost with an address change stays lost, and the segments
	// are dropped instead of leaking out untranslated).
	r.Sysctl("net.netfilter.nf_conntrack_tcp_loose", "0")
	r.IPTables("-A", "FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	// The per-protocol ACCEPT rules double as counters (Home.Counters).
	established := []string{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"}
	r.IPTables(append([]string{"-A", "INPUT", "-i", wanDev}, append(established, "-j", "ACCEPT")...)...)
	r.IPTables("-A", "INPUT", "-i", wanDev, "-j", "DROP")
	for _, p := range []string{"tcp", "udp"} {
		r.IPTables(append([]string{"-A", "FORWARD", "-i", wanDev, "-o", lanDev, "-p", p}, append(established, "-j", "ACCEPT")...)...)
	}
	r.IPTables("-A", "FORWARD", "-i", wanDev, "-j", "DROP")
	if spec.BlockUDP {
		r.IPTables("-A", "FORWARD", "-i", lanDev, "-p", "udp", "-j", "DROP")
	}
	for _, p := range []string{"tcp", "udp"} {
		r.IPTables("-A", "FORWARD", "-i", lanDev, "-o", wanDev, "-p", p, "-j", "ACCEPT")
	}
	return h
}

// PublicHost adds a host directly on the public segment (no NAT) and
// returns it with its address.
func (in *Internet) PublicHost(role string) (*NS, netip.Addr) {
	in.Lab.t.Helper()
	in.nextPublic++
	ns := in.Lab.NS(role)
	ip := netip.MustParseAddr("198.18.0." + strconv.Itoa(publicBase+in.nextPublic))
	in.plug(ns, hostDev, fmt.Sprintf("pub-%d", in.nextPublic))
	ns.Up(hostDev, ip.String()+"/24")
	return ns, ip
}

// Renumber gives the router a new public address, as when an ISP hands out
// a new one or the host moves to another network: the NAT's mappings and
// every connection through the old address are lost.
func (h *Home) Renumber(ip netip.Addr) {
	h.Router.lab.t.Helper()
	// Delete first: in the same subnet the new address would be a
	// secondary, deleted along with the primary.
	h.Router.IP("addr", "del", h.PublicIP.String()+"/24", "dev", wanDev)
	h.Router.IP("addr", "add", ip.String()+"/24", "dev", wanDev)
	h.PublicIP = ip
	h.restoreRoute()
}

// SetUplink cuts (false) or restores (true) the router's uplink with
// `ip link set wan down|up`, as pulling the cable to the modem would.
// Linux's MASQUERADE forgets every mapping through the interface when it
// goes down, and the router does not pick up TCP mid-stream: UDP flows get
// a new mapping (the same port, when free) with their next packet, TCP
// connections through the router are dead without anyone being told.
// Restoring waits for the link to be up.
func (h *Home) SetUplink(up bool) {
	t := h.Router.lab.t
	t.Helper()
	h.Router.SetLink(wanDev, up)
	if up {
		if err := h.Router.WaitLink(wanDev, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		h.restoreRoute()
	}
}

// SetLAN cuts (false) or restores (true) the router's side of the home
// network, like a Wi-Fi drop between the computer and its router: the
// NAT's mappings survive, and so do connections that outlast the cut.
// Restoring waits for the link to be up.
func (h *Home) SetLAN(up bool) {
	t := h.Router.lab.t
	t.Helper()
	h.Router.SetLink(lanDev, up)
	if up {
		if err := h.Router.WaitLink(lanDev, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// restoreRoute puts back the default route, which the kernel removes with
// the link or the address it went through (when the link is up; a cut
// link gets it back from SetUplink).
func (h *Home) restoreRoute() {
	h.Router.lab.t.Helper()
	out, err := h.Router.Exec("ip", "-o", "link", "show", wanDev)
	if err != nil || !strings.Contains(out, ",UP") && !strings.Contains(out, "<UP") {
		return
	}
	h.Router.IP("route", "replace", "default", "via", coreIP)
}

// WAN is the router's uplink device, for SetLink (cutting the home off).
func (h *Home) WAN() string { return wanDev }

// LAN is the host's device towards its router (for shaping with tc).
func (h *Home) LAN() string { return hostDev }

// Counters are the bytes a home's router forwarded, by direction and
// protocol (IP packet sizes).
type Counters struct {
	OutTCP, OutUDP, InTCP, InUDP int64
	// UDPDropped is what BlockUDP dropped.
	UDPDropped int64
}

// Counters reads the router's FORWARD counters.
func (h *Home) Counters() (Counters, error) {
	out, err := h.Router.Exec("iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n")
	if err != nil {
		return Counters{}, err
	}
	return parseCounters(out), nil
}

// parseCounters reads `iptables -L FORWARD -v -x -n`: pkts bytes target
// prot opt in out source destination.
func parseCounters(out string) Counters {
	var c Counters
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		b, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		// iptables-nft prints protocol numbers, iptables-legacy names.
		udp, tcp := f[3] == "udp" || f[3] == "17", f[3] == "tcp" || f[3] == "6"
		out, in := f[5] == lanDev && f[6] == wanDev, f[5] == wanDev && f[6] == lanDev
		switch {
		case f[2] == "DROP" && udp && f[5] == lanDev:
			c.UDPDropped += b
		case f[2] != "ACCEPT":
		case out && tcp:
			c.OutTCP += b
		case out && udp:
			c.OutUDP += b
		case in && tcp:
			c.InTCP += b
		case in && udp:
			c.InUDP += b
		}
	}
	return c
}
