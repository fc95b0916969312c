package udpbatch

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	var cs [2]*Conn
	for i := range cs {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadBuffer(8 << 20)
		cs[i] = newConn(c, peerSpare)
		t.Cleanup(func() { cs[i].Close() })
	}
	return cs[0], cs[1]
}

func TestOffloadOnLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("offload is Linux only") // other platforms fall back; this test is about Linux
	}
	a, _ := pair(t)
	gso, gro := a.Offload()
	t.Logf("GSO %v, GRO %v", gso, gro)
	if !gso || !gro {
		t.Fatal("this Linux kernel should support UDP GSO and GRO")
	}
}

// TestBatchedDelivery sends runs of equal packets, odd sizes and two
// destinations interleaved; every datagram must arrive intact, in order,
// with its own boundaries.
func TestBatchedDelivery(t *testing.T) {
	a, b := pair(t)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	toB := b.LocalAddr().(*net.UDPAddr).AddrPort()
	toC := c.LocalAddr().(*net.UDPAddr).AddrPort()
	var want, wantC [][]byte
	for i := range 600 {
		size := 1200
		switch {
		case i%97 == 0:
			size = 300
		case i%89 == 0:
			size = 1400
		}
		p := bytes.Repeat([]byte{byte(i)}, size)
		p[0], p[1] = byte(i>>8), byte(i)
		dst := toB
		if i%50 == 7 {
			dst = toC
			wantC = append(wantC, p)
		} else {
			want = append(want, p)
		}
		if _, err := a.WriteToAddrPort(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2000)
	for i, w := range want {
		n, from, err := b.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if from != a.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("from %v", from)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Fatalf("datagram %d: %d bytes, want %d (first bytes %x, want %x)", i, n, len(w), buf[:2], w[:2])
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, w := range wantC {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || !bytes.Equal(buf[:n], w) {
			t.Fatalf("datagram %d to the plain socket: %v", i, err)
		}
	}
}

// TestSentBuffersReused: a busy sender's queue holds thousands of packets
// when its flusher takes them; all their buffers must be reused, not only
// a few hundred (the rest were garbage, and the next packets were copied
// into freshly allocated, cold memory: a tenth of a LAN sender's CPU).
func TestSentBuffersReused(t *testing.T) {
	c := &Conn{wake: make(chan struct{}, 1), maxSpare: peerSpare} // no flusher: the test is it
	c.wcond = sync.NewCond(&c.wmu)
	p := make([]byte, 1200)
	addr := netip.MustParseAddrPort("127.0.0.1:9")
	const n = 2000
	fill := func() []outPacket {
		for range n {
			if _, err := c.WriteToAddrPort(p, addr); err != nil {
				t.Fatal(err)
			}
		}
		batch := c.queue
		c.queue, c.queued = nil, 0
		return batch
	}
	c.recycle(fill())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	batch := fill()
	runtime.ReadMemStats(&after)
	if len(batch) != n {
		t.Fatalf("queued %d packets, want %d", len(batch), n)
	}
	// The queue's own slice grows a dozen times; a packet's buffer is one
	// allocation each.
	if mallocs := after.Mallocs - before.Mallocs; mallocs > 100 {
		t.Fatalf("%d allocations for %d packets after a batch of %d was recycled", mallocs, n, n)
	}
}

// TestWriteBatch sends pre-packed batches (equal datagrams, the last one
// shorter) straight through GSO and, with GSO off, through the queue;
// every datagram must arrive intact, in order, with its own boundaries.
func TestWriteBatch(t *testing.T) {
	for _, gso := range []bool{true, false} {
		a, b := pair(t)
		offload, _ := a.Offload()
		if !gso {
			a.gso.Store(false)
		}
		to := b.LocalAddr().(*net.UDPAddr).AddrPort()
		var want [][]byte
		seq := 0
		for batch := range 40 {
			n, seg := 1+batch%14, 1200+batch
			var buf []byte
			for k := range n {
				size := seg
				if k == n-1 && batch%3 == 0 {
					size = 100 + batch // a short last datagram
				}
				p := bytes.Repeat([]byte{byte(seq)}, size)
				p[0], p[1] = byte(seq>>8), byte(seq)
				seq++
				want = append(want, p)
				buf = append(buf, p...)
			}
			if err := a.WriteBatchToAddrPort(buf, seg, to); err != nil {
				t.Fatal(err)
			}
		}
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 2000)
		for i, w := range want {
			n, _, err := b.ReadFromAddrPort(got)
			if err != nil {
				t.Fatalf("GSO %v: datagram %d of %d: %v", gso, i, len(want), err)
			}
			if !bytes.Equal(got[:n], w) {
				t.Fatalf("GSO %v: datagram %d: got %d bytes starting %x, want %d starting %x", gso, i, n, got[:2], len(w), w[:2])
			}
		}
		// The batches went out with GSO, not through the fallback.
		if still, _ := a.Offload(); gso && offload && !still {
			t.Fatal("GSO was turned off by a batch")
		}
	}
}

// The batching sockets take the batches of pion/ice's and pion/turn's
// patches (third_party/*/ferry_batch.go): batching would quietly stop if
// the signatures drifted apart.
var _ interface {
	WriteBatchToAddrPort(b []byte, seg int, addr netip.AddrPort) error
} = (*Conn)(nil)

// TestWriteBatchClosed: a batch on a closed socket says so.
func TestWriteBatchClosed(t *testing.T) {
	a, b := pair(t)
	to := b.LocalAddr().(*net.UDPAddr).AddrPort()
	a.Close()
	if err := a.WriteBatchToAddrPort(make([]byte, 3000), 1000, to); err == nil {
		t.Fatal("a batch on a closed socket was accepted")
	}
}
