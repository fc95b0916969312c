//go:build !linux

package udpbatch

import (
	"errors"
	"net"
	"net/netip"
)

func enableOffload(*net.UDPConn) (gso, gro bool) { return false, false }

var errNoGSO = errors.New("udpbatch: no GSO on this platform")

func (c *Conn) sendGSO([]outPacket) error { return errNoGSO }

func (c *Conn) writeGSO([]byte, int, netip.AddrPort) error { return errNoGSO }

func isOffloadError(err error) bool { return errors.Is(err, errNoGSO) }

func (c *Conn) readBatch() (n, seg int, from netip.AddrPort, err error) {
	n, from, err = c.UDPConn.ReadFromUDPAddrPort(c.rbuf)
	return n, 0, unmap(from), err
}
