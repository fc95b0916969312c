package peer

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/ferrydev/ferry/internal/proto"
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
		tcp           bool
	}{
		{"loopback", "127.0.0.1", "127.0.0.1", host, host, maxSCTPMTU, false},
		{"a peer at our own LAN address goes through loopback", "192.168.1.10", "192.168.1.10", host, host, maxSCTPMTU, false},
		{"a peer at another of our addresses too", "fe80::1", "fd00::10", host, host, maxSCTPMTU, false},
		{"same LAN, 1500", "192.168.1.10", "192.168.1.77", host, host, 1500 - 20 - dtlsOverhead, false},
		{"same LAN, IPv6", "fd00::10", "fd00::99", host, host, 1500 - 40 - dtlsOverhead, false},
		{"peer-reflexive on the LAN", "192.168.1.10", "192.168.1.77", host, prflx, 1500 - 20 - dtlsOverhead, false},
		{"jumbo frames", "10.9.0.2", "10.9.3.4", host, host, 9000 - 20 - dtlsOverhead, false},
		{"a link smaller than the default", "10.77.0.2", "10.77.0.9", host, host, 0, false},
		{"routed: another subnet", "192.168.1.10", "192.168.2.5", host, host, 0, false},
		{"the public internet", "192.168.1.10", "203.0.113.7", host, srflx, 0, false},
		{"their reflexive address on this machine (STUN on loopback)", "192.168.1.10", "127.0.0.1", host, srflx, maxSCTPMTU, false},
		{"their reflexive address on our LAN", "192.168.1.10", "192.168.1.77", host, srflx, 1500 - 20 - dtlsOverhead, false},
		{"our reflexive address is our own", "127.0.0.1", "192.168.1.10", srflx, host, maxSCTPMTU, false},
		{"our reflexive address behind a NAT", "203.0.113.9", "192.168.1.77", srflx, host, 0, false},
		{"our relay", "198.51.100.1", "192.168.1.77", relay, host, 0, false},
		{"their relay on our LAN", "192.168.1.10", "192.168.1.2", host, relay, 0, false},
		{"not our address", "192.168.7.7", "192.168.7.8", host, host, 0, false},
		{"unparsable", "x.local", "192.168.1.77", host, host, 0, false},
		{"TCP on loopback", "127.0.0.1", "127.0.0.1", host, host, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			proto := webrtc.ICEProtocolUDP
			if c.tcp {
				proto = webrtc.ICEProtocolTCP
			}
			pair := webrtc.NewICECandidatePair(
				&webrtc.ICECandidate{Address: c.local, Typ: c.lt, Protocol: proto},
				&webrtc.ICECandidate{Address: c.remote, Typ: c.rt, Protocol: proto})
			if got := pathMTU(pair, ifaces); got != c.want {
				t.Fatalf("pathMTU = %d, want %d", got, c.want)
			}
		})
	}
	if got := pathMTU(nil, ifaces); got != 0 {
		t.Fatalf("no pair: %d", got)
	}
	failing := func() ([]localIface, error) { return nil, errors.New("no interfaces") }
	udp := webrtc.ICEProtocolUDP
	if got := pathMTU(webrtc.NewICECandidatePair(&webrtc.ICECandidate{Address: "127.0.0.1", Typ: host, Protocol: udp}, &webrtc.ICECandidate{Address: "127.0.0.1", Typ: host, Protocol: udp}), failing); got != 0 {
		t.Fatalf("without interfaces: %d", got)
	}
	if sys, err := systemIfaces(); err != nil || loopbackMTU(sys) == 0 {
		t.Fatalf("system interfaces: no loopback (%v)", err)
	}
}

// The packet size a peer gets follows what it said it reads: ferry peers
// from before 64 KiB packets announced only large-packets.
func TestPeerPacketLimit(t *testing.T) {
	for _, c := range []struct {
		features []string
		want     uint32
	}{
		{nil, 0}, // a browser
		{[]string{proto.FeatureResume}, 0},
		{[]string{proto.FeatureResume, proto.FeatureZeroChecksum, proto.FeatureLargePackets}, largeSCTPMTU},
		{[]string{proto.FeatureLargePackets, proto.FeatureJumboPackets}, maxSCTPMTU},
	} {
		d := &driver{}
		d.features.list = c.features
		if got := d.peerPacketLimit(); got != c.want {
			t.Errorf("features %v: limit %d, want %d", c.features, got, c.want)
		}
	}
}
