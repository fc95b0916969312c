//go:build !linux

package udpbatch

import (
	"errors"
	"net"
	"net/netip"
)

func enableOffload(*net.UDPConn) (gso, gro bool) { return false, false }

func (c *Conn) sendGSO([]outPacket) error { return errors.New("udpbatch: no GSO on this platform") }

func (c *Conn) readBatch() (n, seg int, from netip.AddrPort, err error) {
	n, from, err = c.UDPConn.ReadFromUDPAddrPort(c.rbuf)
	return n, 0, unmap(from), err
}
