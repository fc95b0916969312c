// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package allocation

import (
	"net"
)

// Protocol is an enum for relay protocol.
type Protocol uint8

// Network protocols for relay.
const (
	UDP Protocol = iota
	TCP
)

func (p Protocol) String() string {
	switch p {
	case UDP:
		return "UDP"
	case TCP:
		return "TCP"
	default:
		return ""
	}
}

// FiveTuple is the combination (client IP address and port, server IP
// address and port, and transport protocol (currently one of UDP,
// TCP, or TLS)) used to communicate between the client and the
// server.  The 5-tuple uniquely identifies this communication
// stream.  The 5-tuple also uniquely identifies the Allocation on
// the server.
type FiveTuple struct {
	Protocol
	SrcAddr, DstAddr net.Addr
}

// Equal asserts if two FiveTuples are equal.
func (f *FiveTuple) Equal(b *FiveTuple) bool {
	return f.Fingerprint() == b.Fingerprint()
}

// FiveTupleFingerprint is a comparable representation of a FiveTuple.
type FiveTupleFingerprint struct {
	srcIP, dstIP     [16]byte
	srcPort, dstPort uint16
	protocol         Protocol
}

// Fingerprint is the identity of a FiveTuple.
func (f *FiveTuple) Fingerprint() (fp FiveTupleFingerprint) {
	// ferry patch: without allocating (netAddrIPAndPort).
	fp.srcPort = netAddrIPAndPort(&fp.srcIP, f.SrcAddr)
	fp.dstPort = netAddrIPAndPort(&fp.dstIP, f.DstAddr)
	fp.protocol = f.Protocol

	return
}

// netAddrIPAndPort writes addr's IP, in its 16-byte form, to ip and
// returns its port. ferry patch: net.IP.To16 allocated the 16-byte form
// of every IPv4 address, and a fingerprint is taken per relayed packet.
func netAddrIPAndPort(ip *[16]byte, addr net.Addr) uint16 {
	var a net.IP
	var port int
	switch addr := addr.(type) {
	case *net.UDPAddr:
		a, port = addr.IP, addr.Port
	case *net.TCPAddr:
		a, port = addr.IP, addr.Port
	default:
		return 0
	}
	switch len(a) {
	case net.IPv4len:
		ip[10], ip[11] = 0xff, 0xff
		copy(ip[12:], a)
	case net.IPv6len:
		copy(ip[:], a)
	}

	return uint16(port) // nolint:gosec // G115
}
