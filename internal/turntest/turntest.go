// Package turntest allocates relays on a TURN server for tests, with a
// pion TURN client over a UDP socket the caller opened (on loopback, or in
// a lab namespace).
package turntest

import (
	"net"
	"testing"

	"github.com/ferrydev/ferry/turn"
	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v5"
)

// Allocate asks the TURN server at addr (host:port) for a relay over conn
// with the given long-term credentials and returns the relayed socket.
// Client, socket and relay are closed when the test ends; a refused
// allocation is returned, any other failure fails the test.
func Allocate(t testing.TB, conn net.PacketConn, addr, username, password string) (net.PacketConn, error) {
	t.Helper()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: username, Password: password, Realm: turn.Realm, LoggerFactory: lf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	relay, err := c.Allocate()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { relay.Close() })
	return relay, nil
}
