package peer

import (
	"context"
	"time"
)

// probeTimeout bounds the check of the signaling connection after a lost
// link; the server answers a ping within a round trip.
const probeTimeout = 5 * time.Second

// probeSignaling checks in the background that the signaling connection
// still works after a connection generation was lost. A lost path often
// means the network changed (a new public address, another uplink), which
// leaves the WebSocket hanging without an error for many minutes: the
// client never pings, and the server's pings and close go to the old
// address. The offer of the next generation would go nowhere. A connection
// that does not answer a ping is closed, which ends its pump, and
// keepSignaling resumes the session on a new one (PROTOCOL §2.4).
func (s *session) probeSignaling() {
	sig, _ := s.signaling()
	if sig == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		if err := sig.Ping(ctx); err != nil {
			s.log.Info("signaling connection is down; resuming the session", "err", err)
		}
	}()
}
