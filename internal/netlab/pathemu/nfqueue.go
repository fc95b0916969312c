package pathemu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The NFQUEUE netlink protocol (linux/netfilter/nfnetlink_queue.h): every
// message is a netlink header, an nfgenmsg (family, version, queue number
// big-endian) and attributes. Multi-byte values inside the attributes are
// big-endian; the netlink and attribute headers are in host order.
const (
	nfnlSubsysQueue = 3

	msgPacket       = nfnlSubsysQueue << 8   // NFQNL_MSG_PACKET (0)
	msgVerdict      = nfnlSubsysQueue<<8 | 1 // NFQNL_MSG_VERDICT
	msgConfig       = nfnlSubsysQueue<<8 | 2 // NFQNL_MSG_CONFIG
	msgVerdictBatch = nfnlSubsysQueue<<8 | 3 // NFQNL_MSG_VERDICT_BATCH

	attrPacketHdr   = 1 // NFQA_PACKET_HDR
	attrVerdictHdr  = 2 // NFQA_VERDICT_HDR
	attrCfgCmd      = 1 // NFQA_CFG_CMD
	attrCfgParams   = 2 // NFQA_CFG_PARAMS
	attrCfgQueueMax = 3 // NFQA_CFG_QUEUE_MAXLEN

	cfgCmdBind = 1 // NFQNL_CFG_CMD_BIND

	// copyMeta asks for the packet's metadata only, not its bytes: the
	// emulator decides by queue and id, and copying 1,500 bytes per packet
	// to user space and back would cap its throughput for nothing.
	copyMeta = 1 // NFQNL_COPY_META

	verdictDrop   = 0 // NF_DROP
	verdictAccept = 1 // NF_ACCEPT

	nlaTypeMask  = 0x3fff // NLA_TYPE_MASK: without the nested and byte-order flags
	nlmsgHdrLen  = 16
	nfgenHdrLen  = 4
	verdictMsgLn = nlmsgHdrLen + nfgenHdrLen + 4 + 8 // one NFQA_VERDICT_HDR
)

// Errors.
var (
	ErrKernel  = errors.New("pathemu: the kernel refused a netlink request")
	ErrMessage = errors.New("pathemu: malformed netlink message")
)

// appendMsg appends a netlink message of type typ for queue num, with the
// attributes attrs (type, value), and returns the buffer.
func appendMsg(b []byte, typ uint16, flags uint16, seq uint32, family uint8, num uint16, attrs ...attr) []byte {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0) // length, set below
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel's
	b = append(b, family, 0)                   // nfgenmsg: NFNETLINK_V0
	b = binary.BigEndian.AppendUint16(b, num)
	for _, a := range attrs {
		b = binary.NativeEndian.AppendUint16(b, uint16(4+len(a.val)))
		b = binary.NativeEndian.AppendUint16(b, a.typ)
		b = append(b, a.val...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

type attr struct {
	typ uint16
	val []byte
}

// appendVerdict appends a verdict for packet id of queue num; batch makes
// it NFQNL_MSG_VERDICT_BATCH, which applies to every packet of the queue
// with an id up to id that is still waiting.
func appendVerdict(b []byte, num uint16, id uint32, verdict uint32, batch bool) []byte {
	typ := uint16(msgVerdict)
	if batch {
		typ = msgVerdictBatch
	}
	v := make([]byte, 0, 8)
	v = binary.BigEndian.AppendUint32(v, verdict)
	v = binary.BigEndian.AppendUint32(v, id)
	return appendMsg(b, typ, unix.NLM_F_REQUEST, 0, unix.AF_UNSPEC, num, attr{attrVerdictHdr, v})
}

// packet is what a NFQNL_MSG_PACKET tells the emulator.
type packet struct {
	queue uint16
	id    uint32
}

// parseMessages walks the netlink messages in b, calling pkt for each
// queued packet. It returns the first error a NLMSG_ERROR carried (the
// kernel's answer to a request that failed), after walking them all.
func parseMessages(b []byte, pkt func(packet)) error {
	var kernelErr error
	for len(b) >= nlmsgHdrLen {
		n := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		if n < nlmsgHdrLen || n > len(b) {
			return fmt.Errorf("%w: length %d of %d", ErrMessage, n, len(b))
		}
		body := b[nlmsgHdrLen:n]
		switch typ {
		case unix.NLMSG_ERROR:
			if len(body) >= 4 {
				if errno := int32(binary.NativeEndian.Uint32(body)); errno != 0 && kernelErr == nil {
					kernelErr = fmt.Errorf("%w: %w", ErrKernel, unix.Errno(-errno))
				}
			}
		case msgPacket:
			if len(body) < nfgenHdrLen {
				return fmt.Errorf("%w: short packet message", ErrMessage)
			}
			p := packet{queue: binary.BigEndian.Uint16(body[2:])}
			found := false
			for a := body[nfgenHdrLen:]; len(a) >= 4; {
				al := int(binary.NativeEndian.Uint16(a))
				at := binary.NativeEndian.Uint16(a[2:]) & nlaTypeMask
				if al < 4 || al > len(a) {
					return fmt.Errorf("%w: attribute length %d", ErrMessage, al)
				}
				if at == attrPacketHdr && al >= 4+4 {
					p.id = binary.BigEndian.Uint32(a[4:])
					found = true
				}
				a = a[min(len(a), (al+3)&^3):]
			}
			if !found {
				return fmt.Errorf("%w: packet without NFQA_PACKET_HDR", ErrMessage)
			}
			pkt(p)
		}
		b = b[min(len(b), (n+3)&^3):]
	}
	return kernelErr
}

// socket is a NETLINK_NETFILTER socket bound to one or more queues.
type socket struct {
	fd  int
	f   *os.File // fd wrapped for the runtime's poller (Close wakes readers)
	seq uint32
}

// openSocket opens the netlink socket with a receive buffer of rcvbuf
// bytes: a packet whose message does not fit is dropped by the kernel
// (fail-open is off), so it must hold a burst of thousands.
func openSocket(rcvbuf int) (*socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("pathemu: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pathemu: bind netlink: %w", err)
	}
	// FORCE: past net.core.rmem_max (root only, which the lab is).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	// An overrun drops packets (counted by the kernel per queue, see
	// /proc/net/netfilter/nfnetlink_queue) rather than failing our reads.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)
	return &socket{fd: fd, f: os.NewFile(uintptr(fd), "nfqueue")}, nil
}

func (s *socket) close() error { return s.f.Close() }

// send writes b (one or more messages) to the kernel.
func (s *socket) send(b []byte) error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// request sends one configuration message and waits for its ack.
func (s *socket) request(num uint16, family uint8, attrs ...attr) error {
	s.seq++
	b := appendMsg(nil, msgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, s.seq, family, num, attrs...)
	if err := s.send(b); err != nil {
		return fmt.Errorf("pathemu: netlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for {
		n, err := s.recv(buf)
		if err != nil {
			return fmt.Errorf("pathemu: netlink receive: %w", err)
		}
		acked := false
		for m := buf[:n]; len(m) >= nlmsgHdrLen; {
			l := int(binary.NativeEndian.Uint32(m))
			if l < nlmsgHdrLen || l > len(m) {
				return fmt.Errorf("%w: length %d", ErrMessage, l)
			}
			if binary.NativeEndian.Uint16(m[4:]) == unix.NLMSG_ERROR && binary.NativeEndian.Uint32(m[8:]) == s.seq {
				if errno := int32(binary.NativeEndian.Uint32(m[16:])); errno != 0 {
					return fmt.Errorf("%w: %w", ErrKernel, unix.Errno(-errno))
				}
				acked = true
			}
			m = m[min(len(m), (l+3)&^3):]
		}
		if acked {
			return nil
		}
	}
}

// recv reads one datagram, blocking (in the poller) until there is one.
func (s *socket) recv(buf []byte) (int, error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// recvMore reads one more datagram if one is waiting, without blocking;
// ok is false when none is.
func (s *socket) recvMore(buf []byte) (n int, ok bool, err error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var rerr error
	err = rc.Control(func(fd uintptr) {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
	})
	if err != nil {
		return 0, false, err
	}
	if rerr == unix.EAGAIN {
		return 0, false, nil
	}
	return n, rerr == nil, rerr
}

// bind binds queue num to this socket: packets iptables sends there
// (-j NFQUEUE --queue-num num) come to us, maxLen of them at most waiting
// for their verdict (the kernel drops what comes past that).
func (s *socket) bind(num uint16, maxLen uint32) error {
	cmd := []byte{cfgCmdBind, 0, 0, 0}
	binary.BigEndian.PutUint16(cmd[2:], unix.AF_INET)
	if err := s.request(num, unix.AF_UNSPEC, attr{attrCfgCmd, cmd}); err != nil {
		return fmt.Errorf("bind queue %d: %w", num, err)
	}
	params := binary.BigEndian.AppendUint32(nil, 0) // copy range: nothing
	params = append(params, copyMeta)
	ml := binary.BigEndian.AppendUint32(nil, maxLen)
	if err := s.request(num, unix.AF_UNSPEC, attr{attrCfgParams, params}, attr{attrCfgQueueMax, ml}); err != nil {
		return fmt.Errorf("configure queue %d: %w", num, err)
	}
	return nil
}
