package udpbatch

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enableOffload turns on UDP GRO and probes UDP GSO support.
func enableOffload(c *net.UDPConn) (gso, gro bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	_ = raw.Control(func(fd uintptr) {
		// Probing UDP_SEGMENT with 0 tells whether the kernel knows it.
		if _, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT); err == nil {
			gso = true
		}
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil {
			gro = true
		}
	})
	return gso, gro
}

// gsoControl fills b (unix.CmsgSpace(2) bytes) with a UDP_SEGMENT message.
func gsoControl(b []byte, seg int) []byte {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(seg))
	return b
}

// sendGSO sends packets (equal sizes, the last maybe shorter, one address)
// with one sendmsg; the kernel cuts them back into datagrams.
func (c *Conn) sendGSO(ps []outPacket) error {
	total := 0
	for _, p := range ps {
		total += len(p.b)
	}
	// One buffer for the flusher's sends: a fresh 64 KiB per send was a
	// tenth of a busy relay's CPU, in clearing it and collecting it.
	if cap(c.gsoBuf) < total {
		c.gsoBuf = make([]byte, 0, max(total, maxGSOBytes))
	}
	buf := c.gsoBuf[:0]
	for _, p := range ps {
		buf = append(buf, p.b...)
	}
	if c.gsoCtl == nil {
		c.gsoCtl = make([]byte, unix.CmsgSpace(2))
	}
	_, _, err := c.UDPConn.WriteMsgUDPAddrPort(buf, gsoControl(c.gsoCtl, len(ps[0].b)), ps[0].addr)
	if err != nil && isOffloadError(err) {
		return err
	}
	return nil // other errors are packet loss, as for a single write
}

// writeGSO sends b as datagrams of seg bytes to addr, in one sendmsg.
func (c *Conn) writeGSO(b []byte, seg int, addr netip.AddrPort) error {
	var ctl [64]byte
	_, _, err := c.UDPConn.WriteMsgUDPAddrPort(b, gsoControl(ctl[:unix.CmsgSpace(2)], seg), addr)
	return err
}

func isOffloadError(err error) bool {
	var errno syscall.Errno
	for e := err; e != nil; {
		if en, ok := e.(syscall.Errno); ok {
			errno = en
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return errno == unix.EIO || errno == unix.EINVAL || errno == unix.EOPNOTSUPP
}

// readBatch reads one (possibly GRO-coalesced) buffer; seg is the segment
// size, or 0 for a single datagram.
func (c *Conn) readBatch() (n, seg int, from netip.AddrPort, err error) {
	oobn := 0
	n, oobn, _, from, err = c.UDPConn.ReadMsgUDPAddrPort(c.rbuf, c.oob)
	if err != nil {
		return 0, 0, netip.AddrPort{}, err
	}
	if c.gro && oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(c.oob[:oobn])
		if perr == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.IPPROTO_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 2 {
					if len(m.Data) >= 4 {
						seg = int(binary.NativeEndian.Uint32(m.Data))
					} else {
						seg = int(binary.NativeEndian.Uint16(m.Data))
					}
				}
			}
		}
	}
	return n, seg, unmap(from), nil
}
