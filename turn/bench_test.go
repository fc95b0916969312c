package turn_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/turn"
)

// BenchmarkRelay moves 1200-byte packets (a QUIC packet's size) through
// one allocation, each way: the server's per-packet cost (the TURN client
// and the peer socket are in the same process, and the same in every run).
func BenchmarkRelay(b *testing.B) {
	s, clk, _ := start(b, func(c *turn.Config) { c.AllowPrivate = true })
	a, err := allocate(b, s, "ticketA", time.Hour, clk.Now())
	if err != nil {
		b.Fatal(err)
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { peer.Close() })
	if uc, ok := peer.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
	}
	// The first packets open the permission and bind a channel; from then
	// on the client sends ChannelData.
	sendUntilReceived(b, a.relay, peer, peer.LocalAddr(), []byte("open"))
	for range 8 {
		sendUntilReceived(b, a.relay, peer, peer.LocalAddr(), []byte("bind"))
	}
	sendUntilReceived(b, peer, a.relay, a.relay.LocalAddr(), []byte("back"))
	b.Run("to-peer", func(b *testing.B) {
		relayPackets(b, func(p []byte) { _, _ = a.relay.WriteTo(p, peer.LocalAddr()) }, peer)
	})
	b.Run("to-client", func(b *testing.B) {
		relayPackets(b, func(p []byte) { _, _ = peer.WriteTo(p, a.relay.LocalAddr()) }, a.relay)
	})
}

// relayPackets sends b.N packets with at most window of them in flight;
// a lost packet returns no credit, so the sender goes on after a while.
func relayPackets(b *testing.B, send func([]byte), recv net.PacketConn) {
	const window = 256
	msg := make([]byte, 1200)
	credit := make(chan struct{}, window)
	for range window {
		credit <- struct{}{}
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			_ = recv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, _, err := recv.ReadFrom(buf); err != nil {
				return // quiet for 200 ms: all sent has arrived or is lost
			}
			got.Add(1)
			select {
			case credit <- struct{}{}:
			default:
			}
		}
	}()
	wait := time.NewTimer(time.Hour)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for range b.N {
		select {
		case <-credit:
		default:
			wait.Reset(20 * time.Millisecond)
			select {
			case <-credit:
			case <-wait.C:
			}
		}
		send(msg)
	}
	b.StopTimer()
	<-done
	b.ReportMetric(100*float64(int64(b.N)-got.Load())/float64(b.N), "%lost")
}
