// Package peer is ferry's native peer: it runs the signaling session
// (create/join/resume, key confirmation, sealed SDP and ICE), builds pion
// WebRTC connections generation by generation, and drives the transfer
// engine over them, reconnecting when a connection breaks.
package peer

import (
	"log/slog"
	"time"

	"github.com/ferrydev/ferry/internal/pionlog"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/udpbatch"
	"github.com/pion/webrtc/v4"
)

// Agent is what the Go peer announces in its manifest and info message.
const Agent = "ferry-go/0.1.0"

// Options tune the WebRTC side.
type Options struct {
	// ICEServers, if set, replace the STUN/TURN servers the ferry server
	// hands out (e.g. an external coturn).
	ICEServers []proto.ICEServer
	// RelayOnly restricts ICE to relay candidates (the peers never learn
	// each other's addresses).
	RelayOnly bool
	// ReceiveBuffer is the SCTP receive buffer (0: 8 MiB).
	ReceiveBuffer uint32
	// MaxMessage is the largest message we accept (0: 2 MiB); Go peers
	// send chunks up to MaxChunk.
	MaxMessage uint32
	// MaxChunk bounds chunks to another Go peer (0: transfer.DefaultMaxChunk).
	MaxChunk int
	// NoZeroChecksum disables SCTP zero checksums (they are negotiated, and
	// DTLS already authenticates every packet).
	NoZeroChecksum bool
	// IncludeLoopback gathers loopback host candidates (tests on one host
	// without another interface).
	IncludeLoopback bool
	// ICETimeouts override pion's (0: 3 s disconnected, 15 s failed, 1 s keepalive).
	Disconnected, Failed, KeepAlive time.Duration
	// LossTolerance, if above 0, lets SCTP and QUIC repair random losses
	// of up to this share of the bytes without cutting their congestion
	// windows while no queue builds (our pion/sctp's WithLossTolerance and
	// quic-go's Config.LossTolerance; 0: RFC 9260 and RFC 9002).
	LossTolerance float64
	// SmallPackets keeps pion's 1191-byte SCTP packets even to a Go peer on
	// the same link (for comparison).
	SmallPackets bool
	// NoQUIC keeps the transfer on the data channel (SCTP) even when the
	// other side is a Go peer that could run it over QUIC.
	NoQUIC bool
	// PlainUDP sends and receives one UDP packet per system call instead
	// of batching (GSO/GRO on Linux).
	PlainUDP bool
	// stripes, if above 0, stripes every generation over that many
	// connections whatever the peer and the path (tests: two Go peers,
	// which otherwise never stripe).
	stripes int
	// relayStripes makes stripe connections relay-only while the main one
	// may go direct (tests: the path a transfer reports).
	relayStripes bool
	// stripeWrote, if set, is told of every chunk stripe k of generation
	// gen wrote; true closes that stripe's connection (tests: a stripe
	// lost mid-transfer).
	stripeWrote func(gen, k int) bool
}

// relayOnlyWait is how long a relay-only agent waits before nominating
// the best valid pair.
const relayOnlyWait = 500 * time.Millisecond

func (o Options) maxMessage() uint32 {
	if o.MaxMessage == 0 {
		return 2 << 20
	}
	return o.MaxMessage
}

// newAPI configures pion for a session; peerLimit is the largest SCTP
// packet the peer reads (0: pion's default; proto.FeatureLargePackets,
// proto.FeatureJumboPackets).
func newAPI(o Options, log *slog.Logger, peerLimit func() uint32) *webrtc.API {
	var se webrtc.SettingEngine
	// Detached channels with blocking writes give backpressure without
	// polling bufferedAmount, and skip a copy per message.
	se.DetachDataChannels()
	se.EnableDataChannelBlockWrite(true)
	buf := o.ReceiveBuffer
	if buf == 0 {
		buf = 8 << 20
	}
	se.SetSCTPMaxReceiveBufferSize(buf)
	se.SetSCTPMaxMessageSize(o.maxMessage())
	se.EnableSCTPZeroChecksum(!o.NoZeroChecksum)
	se.SetSCTPLossTolerance(o.LossTolerance)
	// Recover quickly from a lost path: retransmit at least every 2 s.
	se.SetSCTPRTOMax(2 * time.Second)
	// Read large SCTP packets; send them to a Go peer on the same link.
	se.SetReceiveMTU(receiveMTU)
	if !o.SmallPackets {
		se.SetSCTPOutboundMTU(func(pair *webrtc.ICECandidatePair) uint32 {
			limit := peerLimit()
			if limit == 0 {
				return 0
			}
			mtu := min(pathMTU(pair, systemIfaces), limit)
			if mtu != 0 {
				log.Debug("large SCTP packets", "mtu", mtu, "local", pair.Local.Address, "remote", pair.Remote.Address)
			}
			return mtu
		})
	}
	d, f, k := o.Disconnected, o.Failed, o.KeepAlive
	if d == 0 {
		d, f, k = 3*time.Second, 15*time.Second, time.Second
	}
	se.SetICETimeouts(d, f, k)
	se.SetIncludeLoopbackCandidate(o.IncludeLoopback)
	if o.RelayOnly {
		// Only relay pairs exist, but a relay reached over UDP beats one
		// over TCP (QUIC or SCTP inside TCP stalls on every loss of the
		// TCP leg, and costs the relay more): nominate the best valid pair
		// once both kinds have had a moment to be checked. With no wait the
		// first valid pair won, over TCP in 4 of 12 LAN bench runs at a
		// third of UDP's rate.
		se.SetRelayAcceptanceMinWait(relayOnlyWait)
	}
	// Our sockets: large buffers always, batching if asked.
	if n, err := udpbatch.NewNet(!o.PlainUDP); err == nil {
		se.SetNet(n)
	}
	// pion's logs through ours; its warnings are about routine events here.
	se.LoggerFactory = pionlog.New(log, slog.LevelDebug)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}
