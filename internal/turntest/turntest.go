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

// Client returns a pion TURN client of the server at addr (host:port)
// over conn, listening, with the given long-term credentials; mod, if not
// nil, changes its configuration first. Client and conn are closed when
// the test ends; a failure fails the test.
func Client(t testing.TB, conn net.PacketConn, addr, username, password string, mod func(*pionturn.ClientConfig)) *pionturn.Client {
	t.Helper()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	cfg := &pionturn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: username, Password: password, Realm: turn.Realm, LoggerFactory: lf,
	}
	if mod != nil {
		mod(cfg)
	}
	c, err := pionturn.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Allocate asks the TURN server at addr (host:port) for a relay over conn
// with the given long-term credentials and returns the relayed socket.
// Client, socket and relay are closed when the test ends; a refused
// allocation is returned, any other failure fails the test.
func Allocate(t testing.TB, conn net.PacketConn, addr, username, password string) (net.PacketConn, error) {
	t.Helper()
	relay, err := Client(t, conn, addr, username, password, nil).Allocate()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { relay.Close() })
	return relay, nil
}
