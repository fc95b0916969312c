package transfer

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
)

// DefaultIdle is how long a receiver waits for the sender's next message
// before it gives up (Receiver.Idle). A working sender is never silent
// that long: it sends chunks while it has credit, and a broken connection
// is noticed by ICE within seconds. Generous, so a slow disk on the
// sender's side does not end a transfer.
const DefaultIdle = proto.ReceiverIdle

// ErrIdle means the sender kept the connection open but sent nothing for
// too long (e.g. it said done before its last chunks and then went
// silent). Everything verified so far stays for resuming.
var ErrIdle = errors.New("transfer: the sender stopped sending")

// idleConn closes the connection when a Recv waits longer than idle; only
// time spent waiting for the peer counts, not our own disk writes.
type idleConn struct {
	Conn
	idle  time.Duration
	timer *time.Timer
	fired atomic.Bool
}

func newIdleConn(c Conn, idle time.Duration) *idleConn {
	ic := &idleConn{Conn: c, idle: idle}
	ic.timer = time.AfterFunc(time.Hour, func() {
		ic.fired.Store(true)
		ic.Conn.Close()
	})
	ic.timer.Stop()
	return ic
}

func (c *idleConn) Recv() ([]byte, error) {
	c.timer.Reset(c.idle)
	b, err := c.Conn.Recv()
	c.timer.Stop()
	return b, err
}

// stop disarms the timer; timedOut reports whether it ended the connection.
func (c *idleConn) stop() (timedOut bool) {
	c.timer.Stop()
	return c.fired.Load()
}
