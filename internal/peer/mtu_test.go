package peer

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestPathMTU(t *testing.T) {
	ifaces := func() ([]localIface, error) {
		pp := func(ss ...string) []netip.Prefix {
			var out []netip.Prefix
			for _, s := range ss {
				out = append(out, netip.MustParsePrefix(s))
			}
			return out
		}
		return []localIface{
			{mtu: 65536, prefixes: pp("127.0.0.1/8", "::1/128")},
			{mtu: 1500, prefixes: pp("192.168.1.10/24", "fe80::1/64", "fd00::10/64")},
			{mtu: 9000, prefixes: pp("10.9.0.2/16")},
			{mtu: 1260, prefixes: pp("10.77.0.2/24")}, // a tunnel
		}, nil
	}
	host, prflx, srflx, relay := webrtc.ICECandidateTypeHost, webrtc.ICECandidateTypePrflx, webrtc.ICECandidateTypeSrflx, webrtc.ICECandidateTypeRelay
	for _, c := range []struct {
		name          string
		local, remote string
		lt, rt        webrtc.ICECandidateType
		want          uint32
	}{
		{"loopback", "127.0.0.1", "127.0.0.1", host, host, maxSCTPMTU},
		{"a peer at our own LAN address goes through loopback", "192.168.1.10", "192.168.1.10", host, host, maxSCTPMTU},
		{"a peer at another of our addresses too", "fe80::1", "fd00::10", host, host, maxSCTPMTU},
		{"same LAN, 1500", "192.168.1.10", "192.168.1.77", host, host, 1500 - 20 - dtlsOverhead},
		{"same LAN, IPv6", "fd00::10", "fd00::99", host, host, 1500 - 40 - dtlsOverhead},
		{"peer-reflexive on the LAN", "192.168.1.10", "192.168.1.77", host, prflx, 1500 - 20 - dtlsOverhead},
		{"jumbo frames, capped by pion's read buffers", "10.9.0.2", "10.9.3.4", host, host, maxSCTPMTU},
		{"a link smaller than the default", "10.77.0.2", "10.77.0.9", host, host, 0},
		{"routed: another subnet", "192.168.1.10", "192.168.2.5", host, host, 0},
		{"the public internet", "192.168.1.10", "203.0.113.7", host, srflx, 0},
		{"our relay", "198.51.100.1", "192.168.1.77", relay, host, 0},
		{"their relay on our LAN", "192.168.1.10", "192.168.1.2", host, relay, 0},
		{"not our address", "192.168.7.7", "192.168.7.8", host, host, 0},
		{"unparsable", "x.local", "192.168.1.77", host, host, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			pair := webrtc.NewICECandidatePair(
				&webrtc.ICECandidate{Address: c.local, Typ: c.lt},
				&webrtc.ICECandidate{Address: c.remote, Typ: c.rt})
			if got := pathMTU(pair, ifaces); got != c.want {
				t.Fatalf("pathMTU = %d, want %d", got, c.want)
			}
		})
	}
	if got := pathMTU(nil, ifaces); got != 0 {
		t.Fatalf("no pair: %d", got)
	}
	failing := func() ([]localIface, error) { return nil, errors.New("no interfaces") }
	if got := pathMTU(webrtc.NewICECandidatePair(&webrtc.ICECandidate{Address: "127.0.0.1", Typ: host}, &webrtc.ICECandidate{Address: "127.0.0.1", Typ: host}), failing); got != 0 {
		t.Fatalf("without interfaces: %d", got)
	}
	if sys, err := systemIfaces(); err != nil || loopbackMTU(sys) == 0 {
		t.Fatalf("system interfaces: no loopback (%v)", err)
	}
}
