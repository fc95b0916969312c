package peer

import (
	"net"
	"net/netip"

	"github.com/pion/webrtc/v4"
)

// SCTP packet sizes. pion (and Chromium) send SCTP packets of at most 1191
// bytes, small enough for any path, TURN and IPv6 included; on a 2-core
// machine that per-packet cost, not the bytes, bounds a transfer (about
// 880,000 packets per GB, docs/PERFORMANCE.md). Between two Go peers on one
// link, larger packets are safe: our pion reads SCTP packets of up to
// 64 KiB (third_party/pion-*).
const (
	defaultSCTPMTU = 1191
	// largeSCTPMTU is the most a peer that announced only "large-packets"
	// reads (ferry before its pion read whole datagrams: 8192 bytes with
	// the DTLS record around the packet).
	largeSCTPMTU = 8000
	// maxSCTPMTU is the largest packet whose DTLS record (13 header, 8
	// nonce, 16 tag) fits in one IPv4 UDP datagram (65,507 bytes), with
	// room to spare.
	maxSCTPMTU = 65000
	// receiveMTU is the read buffer for one UDP datagram.
	receiveMTU = 65536 + 512
	// dtlsOverhead is what DTLS and UDP add to an SCTP packet, rounded up
	// (UDP 8, DTLS record header 13, explicit nonce 8, tag 16, and margin).
	dtlsOverhead = 64
)

// ifaceLister lists the local interfaces with their addresses (net's in
// production; tests give their own).
type ifaceLister func() ([]localIface, error)

type localIface struct {
	mtu      int
	prefixes []netip.Prefix
}

func systemIfaces() ([]localIface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]localIface, 0, len(ifs))
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		li := localIface{mtu: i.MTU}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if p, err := netip.ParsePrefix(n.String()); err == nil {
					li.prefixes = append(li.prefixes, p)
				}
			}
		}
		out = append(out, li)
	}
	return out, nil
}

// ownAddr reports whether a is one of this machine's addresses.
func ownAddr(list []localIface, a netip.Addr) bool {
	for _, i := range list {
		for _, p := range i.prefixes {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

// pathMTU is the SCTP packet size for a connection over pair, to a peer
// that reads large packets. It is larger than the default only when no
// router sits between the two, so that a link's MTU is the path's: our
// address to a peer on our own machine (loopback's MTU) or in a subnet of
// the interface our address is on (that interface's MTU). Otherwise, and
// for relayed pairs or reflexive addresses elsewhere, whose path crosses
// networks of unknown MTU, it is 0: pion's default.
func pathMTU(pair *webrtc.ICECandidatePair, ifaces ifaceLister) uint32 {
	if pair == nil || pair.Local == nil || pair.Remote == nil {
		return 0
	}
	// UDP only: pion's ICE-TCP framing reads 8192 bytes at most.
	if pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Remote.Protocol != webrtc.ICEProtocolUDP {
		return 0
	}
	// A reflexive address (theirs or ours) on this machine or our link is
	// the same path as a host candidate: with a STUN server on the same
	// host, a loaded ICE agent may nominate such a pair before the host
	// pair. Ours behind a NAT is not one of our addresses, and is refused.
	lt, rt := pair.Local.Typ, pair.Remote.Typ
	if (lt != webrtc.ICECandidateTypeHost && lt != webrtc.ICECandidateTypeSrflx) ||
		(rt != webrtc.ICECandidateTypeHost && rt != webrtc.ICECandidateTypePrflx && rt != webrtc.ICECandidateTypeSrflx) {
		return 0
	}
	local, err1 := netip.ParseAddr(pair.Local.Address)
	remote, err2 := netip.ParseAddr(pair.Remote.Address)
	if err1 != nil || err2 != nil {
		return 0
	}
	local, remote = local.Unmap(), remote.Unmap()
	list, err := ifaces()
	if err != nil {
		return 0
	}
	if lt == webrtc.ICECandidateTypeSrflx && !ownAddr(list, local) {
		return 0
	}
	// A peer at one of our own addresses is on this machine: the kernel
	// sends its packets through the loopback interface, whatever the
	// interface that holds the address.
	if ownAddr(list, remote) {
		return packetMTU(loopbackMTU(list), local.Is6())
	}
	for _, i := range list {
		// Our address is on this interface and the peer's in one of its
		// subnets (an IPv6 interface has several: link-local, ULA, global).
		ours, onLink := false, false
		for _, p := range i.prefixes {
			ours = ours || p.Addr() == local
			onLink = onLink || p.Contains(remote)
		}
		if !ours || !onLink {
			continue
		}
		return packetMTU(i.mtu, local.Is6())
	}
	return 0
}

// packetMTU is the SCTP packet size for a link MTU, or 0 when that is no
// larger than the default.
func packetMTU(linkMTU int, ipv6 bool) uint32 {
	ipHeader := 20
	if ipv6 {
		ipHeader = 40
	}
	mtu := min(linkMTU-ipHeader-dtlsOverhead, maxSCTPMTU)
	if mtu <= defaultSCTPMTU {
		return 0
	}
	return uint32(mtu)
}

// loopbackMTU is the loopback interface's MTU (Linux: 65536).
func loopbackMTU(list []localIface) int {
	for _, i := range list {
		for _, p := range i.prefixes {
			if p.Addr().IsLoopback() {
				return i.mtu
			}
		}
	}
	return 0
}
