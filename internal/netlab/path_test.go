package netlab_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/netlab"
	"github.com/ferrydev/ferry/internal/netlab/pathemu"
)

// The emulator delays by the configured RTT: ping's average within a
// millisecond or two (a loaded machine wakes late), never less than the
// delay minus the emulator's early release (0.35 ms each way).
func TestPathEmulatorRTT(t *testing.T) {
	for _, spec := range []netlab.PathSpec{netlab.Path30ms, netlab.Path100ms} {
		t.Run(spec.Name, func(t *testing.T) {
			l := netlab.New(t)
			p := l.Path(spec, emuBin)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, err := p.Ping(ctx, 100, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d/%d answered, rtt min %v avg %v max %v", spec.Name, r.Received, r.Sent, r.Min, r.Avg, r.Max)
			if r.Received != r.Sent {
				t.Errorf("%d of %d pings unanswered on a loss-free path", r.Sent-r.Received, r.Sent)
			}
			if r.Min < spec.RTT-time.Millisecond || r.Avg > spec.RTT+2*time.Millisecond {
				t.Errorf("rtt min %v avg %v, want about %v", r.Min, r.Avg, spec.RTT)
			}
			if n, err := p.KernelQueueDrops(); err != nil || n != 0 {
				t.Errorf("the kernel dropped %d packets in the emulator's queues (%v)", n, err)
			}
		})
	}
}

// The emulator drops the configured share each way, and only that: what
// B receives is what the emulator let through.
func TestPathEmulatorLoss(t *testing.T) {
	l := netlab.New(t)
	spec := netlab.PathSpec{Name: "loss1", RTT: 10 * time.Millisecond, Loss: 0.01}
	p := l.Path(spec, emuBin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 20000
	got, late, ab := sendUDP(t, ctx, p, n)
	share := float64(ab.Dropped) / float64(ab.Received)
	sigma := math.Sqrt(spec.Loss * (1 - spec.Loss) / n)
	t.Logf("sent %d, emulator saw %d and dropped %d (%.2f%%), B received %d, %d out of order", n, ab.Received, ab.Dropped, 100*share, got, late)
	if math.Abs(share-spec.Loss) > 5*sigma {
		t.Errorf("dropped %.3f%%, want %.1f%% ± %.2f%%", 100*share, 100*spec.Loss, 500*sigma)
	}
	if late != 0 {
		t.Errorf("%d packets out of order without reordering", late)
	}
}

// With reordering, a share of the packets arrive after later ones; none
// is lost.
func TestPathEmulatorReorder(t *testing.T) {
	l := netlab.New(t)
	p := l.Path(netlab.Path30msReord, emuBin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 5000
	got, late, _ := sendUDP(t, ctx, p, n)
	t.Logf("B received %d of %d, %d after a later one", got, n, late)
	if got != n || late == 0 || late > n/20 {
		t.Errorf("received %d of %d, %d out of order; want all, about 1%% out of order", got, n, late)
	}
}

// sendUDP sends n numbered datagrams from A to B, paced at 20 a
// millisecond so that no socket buffer on the way overflows, and returns
// how many B received and how many of those came after a higher number.
// It waits until the emulator has let through or dropped every one, and
// returns the emulator's counters for A → B.
func sendUDP(t *testing.T, ctx context.Context, p *netlab.Path, n int) (received, late int, ab pathemu.Stats) {
	t.Helper()
	rc, err := p.B.ListenPacket("udp4", p.BIP+":9999")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// The emulator releases what fell due together: room for bursts.
	if err := rc.(*net.UDPConn).SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	type result struct{ received, late int }
	done := make(chan result, 1)
	counted := make(chan int, 1)
	go func() {
		var r result
		highest := -1
		buf := make([]byte, 1500)
		for {
			_ = rc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			k, _, err := rc.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				select {
				case want := <-counted:
					if r.received >= want {
						done <- r
						return
					}
					counted <- want
				default:
				}
				if ctx.Err() != nil {
					done <- r
					return
				}
				continue
			}
			if err != nil {
				done <- r
				return
			}
			if k >= 4 {
				seq := int(binary.BigEndian.Uint32(buf))
				r.received++
				if seq < highest {
					r.late++
				}
				highest = max(highest, seq)
			}
		}
	}()
	sc, err := p.A.DialContext(ctx, "udp4", p.BIP+":9999")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	msg := make([]byte, 200)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		if i%20 == 0 {
			<-tick.C // pacing the sender, not waiting for anything
		}
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := sc.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	// Every datagram has been through the emulator when it holds none and
	// has seen all n; then B must have got the released ones.
	for {
		st, err := p.EmulatorStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ab = st[netlab.PathQueue(0, 1)]
		if ab.Received == uint64(n) && ab.Held == 0 {
			counted <- int(ab.Released)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("emulator stats %+v after sending %d", ab, n)
		case <-time.After(50 * time.Millisecond): // polling the emulator's counters, bounded by ctx
		}
	}
	r := <-done
	if r.received != int(ab.Released) {
		t.Errorf("B received %d datagrams, the emulator let %d through", r.received, ab.Released)
	}
	return r.received, r.late, ab
}

// ferry moves a file Go → Go over a long and a lossy path intact. The
// time bound is generous (a loaded two-core machine): this checks that
// transfers finish on such paths, not how fast (that is the path
// benchmark's job).
func TestFerryOverPath(t *testing.T) {
	for _, c := range []struct {
		spec netlab.PathSpec
		size int64
		// args: both peers' extra flags; transport the one they must use.
		args      []string
		transport string
		// blockQUIC: the router drops every UDP datagram that starts like
		// QUIC (RFC 9443: first byte 64–127 or 192–255), as a firewall
		// that knows QUIC might; DTLS and STUN pass.
		blockQUIC bool
	}{
		{netlab.Path30msLoss1, 4 << 20, nil, "quic", false},
		{netlab.Path100ms, 8 << 20, nil, "quic", false},
		// The data channel (SCTP) stays covered on a lossy path.
		{netlab.Path30msLoss1, 4 << 20, []string{"--no-quic"}, "sctp", false},
		// QUIC's handshake never completes: both peers fall back to the
		// data channel after quicSetupTimeout.
		{netlab.PathLAN, 4 << 20, nil, "sctp", true},
	} {
		name := c.spec.Name
		if c.args != nil {
			name += "-sctp"
		}
		if c.blockQUIC {
			name += "-quic-blocked"
		}
		t.Run(name, func(t *testing.T) {
			l := netlab.New(t)
			p := l.Path(c.spec, emuBin)
			srv := p.Serve(ferryBin)
			if c.blockQUIC {
				if out, err := p.R.Exec("iptables", "-I", "FORWARD", "-p", "udp", "-m", "u32", "--u32", "0>>22&0x3C@8>>24&0x40=0x40", "-j", "DROP"); err != nil {
					t.Fatalf("iptables: %v: %s", err, out)
				}
			}
			file, sum, err := netlab.RandomFile(t.TempDir(), "payload.bin", c.size)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			tr := l.StartTransfer(ctx, netlab.TransferSpec{Bin: ferryBin, Server: srv.URL, From: p.A, To: p.B, File: file, Sum: sum,
				SendArgs: c.args, RecvArgs: c.args})
			res, err := tr.Finish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != "direct" {
				t.Errorf("path %q, want direct", res.Path)
			}
			if c.blockQUIC {
				// The fallback must come from the dropped QUIC packets.
				out, err := p.R.Exec("iptables", "-L", "FORWARD", "-v", "-n", "-x")
				if f := strings.Fields(lineWith(out, "DROP")); err != nil || len(f) == 0 || f[0] == "0" {
					t.Errorf("the router dropped no QUIC packets (%v):\n%s", err, out)
				}
			}
			if res.SendDone.Transport != c.transport || res.RecvDone.Transport != c.transport {
				t.Errorf("transports %q/%q, want %s", res.SendDone.Transport, res.RecvDone.Transport, c.transport)
			}
			t.Logf("%s: %d MiB in %v (%.2f MB/s), %d reconnects", c.spec.Name, c.size>>20, res.Elapsed.Round(time.Millisecond), res.MBps, res.Reconnecting)
		})
	}
}

// lineWith is the first line of s that contains sub ("" if none).
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
