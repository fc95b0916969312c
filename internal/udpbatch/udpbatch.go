// Package udpbatch gives pion's ICE agent UDP sockets that move packets in
// batches: outgoing packets are queued and sent by one goroutine, runs of
// equal-sized packets to one address in a single sendmsg with UDP GSO
// (UDP_SEGMENT); incoming packets are read with UDP GRO, many per recvmsg.
// pion sends every SCTP packet (<= 1200 bytes) with its own syscall; on a
// busy transfer that syscall and the wake-ups around it are a quarter of
// the CPU time. Where the kernel lacks GSO/GRO the sockets fall back to
// one syscall per packet, with the queueing kept.
package udpbatch

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
)

const (
	// maxSegments is the kernel's UDP_MAX_SEGMENTS.
	maxSegments = 64
	// maxGSOBytes keeps one GSO send within a UDP datagram's size.
	maxGSOBytes = 65000
	// readBufSize holds one GRO-coalesced read.
	readBufSize = 65536 + 1024
	// queueLimit bounds queued outgoing bytes; beyond it writers wait, as
	// they would on a full socket buffer.
	queueLimit = 4 << 20
	// lingerPackets and lingerFor bound how long the flusher waits for a
	// batch to fill.
	lingerPackets = 32
	lingerFor     = 50 * time.Microsecond
	// peerSpare bounds the sent packets' buffers a peer's socket keeps for
	// reuse: as many as a full queue holds, so that a busy sender, whose
	// queue fills, reuses buffers that are still in cache instead of
	// allocating new ones and leaving the old ones to the collector (up
	// to 5 MB per socket, and a peer has a few).
	peerSpare = queueLimit / 1200
	// sharedSpare is Wrap's: a relay server has a socket per allocation,
	// thousands of them, which must not each keep megabytes.
	sharedSpare = 256
)

// Socket buffer sizes asked for (the kernel caps them at net.core.rmem_max
// and wmem_max). Linux's default of ~200 KiB overflows at a few hundred
// megabits: every dropped datagram halves SCTP's congestion window.
const (
	readBuffer  = 8 << 20
	writeBuffer = 4 << 20
)

// Net is a transport.Net whose UDP sockets have large buffers and, with
// Batch, move packets in batches.
type Net struct {
	*stdnet.Net
	Batch bool
}

// NewNet wraps the standard network.
func NewNet(batch bool) (*Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &Net{Net: n, Batch: batch}, nil
}

// wrap enlarges c's buffers and, if batching, wraps it.
func (n *Net) wrap(c *net.UDPConn) transport.UDPConn {
	setBuffers(c)
	if !n.Batch {
		return c
	}
	return newConn(c, peerSpare)
}

func setBuffers(c *net.UDPConn) {
	_ = c.SetReadBuffer(readBuffer)
	_ = c.SetWriteBuffer(writeBuffer)
}

// Wrap makes c a batching socket with large buffers; c belongs to the
// returned Conn from now on. It keeps fewer spare buffers than a peer's
// sockets (sharedSpare): for servers with many sockets.
func Wrap(c *net.UDPConn) *Conn {
	setBuffers(c)
	return newConn(c, sharedSpare)
}

// WrapBusy is Wrap for a server's one socket that carries all its
// clients' packets (a TURN listener): it keeps as many spare buffers as
// its queue holds, as a peer's sockets do, since with only sharedSpare a
// busy relay allocated a new buffer for most packets it queued.
func WrapBusy(c *net.UDPConn) *Conn {
	setBuffers(c)
	return newConn(c, peerSpare)
}

// mdnsPort: pion's mDNS client reads its socket through x/net's
// ipv4.PacketConn, which needs the socket itself, not a wrapper.
const mdnsPort = 5353

// ListenUDP returns a batching socket (plain for mDNS).
func (n *Net) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	if laddr != nil && (laddr.Port == mdnsPort || laddr.IP.IsMulticast()) {
		return c, nil
	}
	return n.wrap(c), nil
}

// ListenPacket returns a batching socket for UDP networks.
func (n *Net) ListenPacket(network, address string) (net.PacketConn, error) {
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	if c, ok := pc.(*net.UDPConn); ok && c.LocalAddr().(*net.UDPAddr).Port != mdnsPort {
		return n.wrap(c), nil
	}
	return pc, nil
}

// Conn is a batching UDP socket. It implements transport.UDPConn and
// pion's allocation-free AddrPortReaderWriter.
type Conn struct {
	*net.UDPConn
	// gso: UDP_SEGMENT works on this socket; cleared, by whichever sender
	// sees the device refuse it, for the socket's life.
	gso atomic.Bool
	gro bool // UDP_GRO is on

	wmu    sync.Mutex
	wcond  *sync.Cond
	queue  []outPacket
	queued int
	spare  [][]byte
	// maxSpare bounds spare, the sent packets' buffers kept for reuse.
	maxSpare int
	closed   bool
	wake     chan struct{}
	done     chan struct{}
	// gsoBuf and gsoCtl are the flusher's, reused for every GSO send.
	gsoBuf, gsoCtl []byte

	rmu   sync.Mutex
	rbuf  []byte
	rpend []byte // GRO segments not yet returned
	rseg  int
	rfrom netip.AddrPort
	oob   []byte
	last  atomic.Pointer[lastFrom]
}

type outPacket struct {
	b    []byte
	addr netip.AddrPort
}

var errClosed = net.ErrClosed

func newConn(c *net.UDPConn, maxSpare int) *Conn {
	bc := &Conn{UDPConn: c, maxSpare: maxSpare, wake: make(chan struct{}, 1), done: make(chan struct{}), rbuf: make([]byte, readBufSize), oob: make([]byte, 128)}
	bc.wcond = sync.NewCond(&bc.wmu)
	gso, gro := enableOffload(c)
	bc.gso.Store(gso)
	bc.gro = gro
	go bc.flusher()
	return bc
}

// Offload reports whether GSO and GRO are in use.
func (c *Conn) Offload() (gso, gro bool) { return c.gso.Load(), c.gro }

// WriteToAddrPort queues b for addr; it returns at once unless the queue
// is full. Errors of the actual send are not reported (UDP is lossy anyway).
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.wmu.Lock()
	for c.queued > queueLimit && !c.closed {
		c.wcond.Wait()
	}
	if c.closed {
		c.wmu.Unlock()
		return 0, errClosed
	}
	var buf []byte
	if n := len(c.spare); n > 0 && cap(c.spare[n-1]) >= len(b) {
		buf = c.spare[n-1][:len(b)]
		c.spare = c.spare[:n-1]
	} else {
		buf = make([]byte, len(b), max(len(b), 1500))
	}
	copy(buf, b)
	c.queue = append(c.queue, outPacket{b: buf, addr: unmap(addr)})
	c.queued += len(b)
	c.wmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// WriteBatchToAddrPort sends b, datagrams of seg bytes each (the last may
// be shorter), to addr. With GSO that is one sendmsg on the caller's
// goroutine: the packets are not copied and do not queue (quic-go packs
// its packets so, and sends each batch whole). Without GSO they go through
// the queue one by one. Like WriteToAddrPort it reports only a closed
// socket. A caller that sends everything this way keeps its packets in
// order; its packets and the queue's may interleave.
func (c *Conn) WriteBatchToAddrPort(b []byte, seg int, addr netip.AddrPort) error {
	if len(b) == 0 {
		return nil
	}
	addr = unmap(addr)
	if seg <= 0 || seg > len(b) {
		seg = len(b)
	}
	if c.gso.Load() && len(b) <= maxGSOBytes && (len(b)+seg-1)/seg <= maxSegments {
		var err error
		if seg == len(b) {
			_, err = c.UDPConn.WriteToUDPAddrPort(b, addr)
		} else {
			err = c.writeGSO(b, seg, addr)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, net.ErrClosed):
			return errClosed
		case seg == len(b) || !isOffloadError(err):
			return nil // lost, as a queued packet would be
		}
		c.gso.Store(false) // the device refused offload: send singly
	}
	for off := 0; off < len(b); off += seg {
		if _, err := c.WriteToAddrPort(b[off:min(off+seg, len(b))], addr); err != nil {
			return err
		}
	}
	return nil
}

// WriteTo implements net.PacketConn.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("udpbatch: not a UDP address")
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// WriteToUDP implements transport.UDPConn.
func (c *Conn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	return c.WriteToAddrPort(b, addr.AddrPort())
}

func (c *Conn) flusher() {
	defer close(c.done)
	var batch []outPacket
	for {
		c.wmu.Lock()
		for len(c.queue) == 0 && !c.closed {
			c.wmu.Unlock()
			<-c.wake
			c.wmu.Lock()
		}
		if c.closed && len(c.queue) == 0 {
			c.wmu.Unlock()
			return
		}
		// Linger a moment while packets keep coming: pion produces one
		// packet about as fast as we can send one, so without this most
		// sends would carry a single packet.
		if len(c.queue) < lingerPackets && !c.closed {
			deadline := time.Now().Add(lingerFor)
			for n := len(c.queue); n < lingerPackets && time.Now().Before(deadline); {
				c.wmu.Unlock()
				runtime.Gosched()
				c.wmu.Lock()
				if len(c.queue) == n {
					break // the producer paused: send what we have
				}
				n = len(c.queue)
			}
		}
		batch, c.queue = c.queue, batch[:0]
		c.queued = 0
		c.wcond.Broadcast()
		c.wmu.Unlock()

		c.send(batch)
		c.recycle(batch)
		clear(batch)
	}
}

// recycle keeps a sent batch's buffers for the next packets.
func (c *Conn) recycle(batch []outPacket) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, p := range batch {
		if len(c.spare) < c.maxSpare {
			c.spare = append(c.spare, p.b)
		}
	}
}

// send writes a batch, grouping runs of equal-sized packets (the last of
// a run may be shorter) to the same address into one GSO send.
func (c *Conn) send(batch []outPacket) {
	for i := 0; i < len(batch); {
		j := i + 1
		if c.gso.Load() {
			seg, total := len(batch[i].b), len(batch[i].b)
			for j < len(batch) && j-i < maxSegments && batch[j].addr == batch[i].addr &&
				len(batch[j].b) <= seg && total+len(batch[j].b) <= maxGSOBytes {
				total += len(batch[j].b)
				j++
				if len(batch[j-1].b) < seg {
					break // a short segment ends a GSO run
				}
			}
		}
		if j-i == 1 {
			_, _ = c.UDPConn.WriteToUDPAddrPort(batch[i].b, batch[i].addr)
		} else if err := c.sendGSO(batch[i:j]); err != nil {
			// The device refused offload: stop using it and send singly.
			c.gso.Store(false)
			for _, p := range batch[i:j] {
				_, _ = c.UDPConn.WriteToUDPAddrPort(p.b, p.addr)
			}
		}
		i = j
	}
}

// ReadFromAddrPort returns one datagram, splitting GRO-coalesced reads.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rpend) == 0 {
		n, seg, from, err := c.readBatch()
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		if seg <= 0 || seg >= n {
			m := copy(b, c.rbuf[:n])
			return m, from, nil
		}
		c.rpend, c.rseg, c.rfrom = c.rbuf[:n], seg, from
	}
	k := min(c.rseg, len(c.rpend))
	m := copy(b, c.rpend[:k])
	c.rpend = c.rpend[k:]
	return m, c.rfrom, nil
}

// ReadFrom implements net.PacketConn. The address may be shared with
// earlier reads from the same sender: callers must not modify it.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, c.udpAddr(from), nil
}

// ReadFromUDP implements transport.UDPConn; see ReadFrom about the address.
func (c *Conn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, c.udpAddr(from), nil
}

// lastFrom is the address of the last sender, as returned by ReadFrom.
type lastFrom struct {
	ap netip.AddrPort
	ua *net.UDPAddr
}

// udpAddr converts ap, reusing the last conversion while packets keep
// coming from one sender (nearly always, on a transfer's sockets): two
// allocations per packet are a visible share of a relay's garbage.
func (c *Conn) udpAddr(ap netip.AddrPort) *net.UDPAddr {
	if l := c.last.Load(); l != nil && l.ap == ap {
		return l.ua
	}
	ua := net.UDPAddrFromAddrPort(ap)
	c.last.Store(&lastFrom{ap: ap, ua: ua})
	return ua
}

// Close flushes what is queued and closes the socket.
func (c *Conn) Close() error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return errClosed
	}
	c.closed = true
	c.wcond.Broadcast()
	c.wmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-c.done:
	case <-time.After(time.Second): // a wedged send must not block Close
	}
	return c.UDPConn.Close()
}

// unmap turns ::ffff:a.b.c.d into a.b.c.d, so runs to one peer group
// whichever form the address came in.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
