package signaling

import (
	"net/netip"
	"time"
)

// Event kinds passed to Config.Observe.
const (
	EventCreated  = "created"  // a sender created a ticket
	EventJoined   = "joined"   // a receiver consumed a ticket
	EventPaired   = "paired"   // both peers connected; Latency is join-to-pair
	EventResumed  = "resumed"  // a peer reconnected to a resume session
	EventRejected = "rejected" // create/join refused; Reason says why
	EventExpired  = "expired"  // a ticket expired unused
	EventWrongKey = "wrong_key"
	EventCanceled = "canceled"
	EventReport   = "report"  // a peer's end-of-transfer report
	EventRelayed  = "relayed" // one signaling message relayed; Latency is in-server time
	// EventConnRefused: a connection over the per-address cap was closed.
	// Metrics only: each one in the audit log would let a client flood it.
	EventConnRefused = "conn_refused"
)

// Event is something metrics and the audit log may want to know. It never
// carries secrets, keys, SDP or file contents; Names only if a peer sent them.
type Event struct {
	Kind     string
	TicketID string
	Role     string
	IP       netip.Addr
	User     string // signed-in sender
	Reason   string
	Latency  time.Duration
	// Report fields.
	Path    string
	Bytes   int64
	Outcome string
	Files   int
	Names   []string
}
