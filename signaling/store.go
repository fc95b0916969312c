package signaling

import (
	"context"
	"time"
)

// Store holds the state several server instances must share: tickets, resume
// sessions, which connection holds which role of a rendezvous, and a message
// bus between instances. MemoryStore is the embedded default; RedisStore
// lets instances behind one hostname pair peers that landed on different ones.
type Store interface {
	// CreateTicket records a new, unused ticket; ErrExists if the id is taken.
	CreateTicket(ctx context.Context, t Ticket) error
	// ConsumeTicket marks the ticket used, atomically across instances. It
	// returns ErrNotFound, ErrExpired or ErrUsed when it cannot.
	ConsumeTicket(ctx context.Context, id string, now time.Time) (Ticket, error)
	// DeleteTicket forgets an unconsumed ticket (its sender left).
	DeleteTicket(ctx context.Context, id string) error

	// PutSession registers a resume session; ErrExists if it is already there.
	PutSession(ctx context.Context, s Session, ttl time.Duration) error
	// GetSession returns a live session or ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// TouchSession extends a session's life.
	TouchSession(ctx context.Context, id string, ttl time.Duration) error
	// DeleteSession forgets a session.
	DeleteSession(ctx context.Context, id string) error

	// ClaimSlot makes conn the holder of role in rendezvous key and returns
	// the previous holder ("" if none). Slots expire after ttl unless claimed
	// again, so a crashed instance does not hold them forever.
	ClaimSlot(ctx context.Context, key, role, conn string, ttl time.Duration) (prev string, err error)
	// RefreshSlot extends conn's hold on the slot; false if it no longer holds it.
	RefreshSlot(ctx context.Context, key, role, conn string, ttl time.Duration) (bool, error)
	// Slot returns the current holder of role in key, or "".
	Slot(ctx context.Context, key, role string) (string, error)
	// ReleaseSlot clears the slot if conn still holds it.
	ReleaseSlot(ctx context.Context, key, role, conn string) error

	// Publish delivers msg to the instance's subscription.
	Publish(ctx context.Context, instance string, msg []byte) error
	// Subscribe returns the messages published to instance until ctx ends.
	Subscribe(ctx context.Context, instance string) (<-chan []byte, error)

	// KeepLink records that the link of ticket id is in use until at least
	// until (it never shortens what was recorded); EndLink forgets it;
	// LinkAlive reports whether it is in use now. TURN credentials are
	// tied to links: a relay refuses those of a link that is not alive.
	KeepLink(ctx context.Context, id string, until time.Time) error
	EndLink(ctx context.Context, id string) error
	LinkAlive(ctx context.Context, id string) (bool, error)

	// Stats returns counts for the admin page and metrics.
	Stats(ctx context.Context) (StoreStats, error)
	// LiveTickets lists ids of unconsumed, unexpired tickets (admin page).
	LiveTickets(ctx context.Context, limit int) ([]string, error)
}

// Ticket is what the server knows about a ticket: never the secret.
type Ticket struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// CreatorIP is kept for the audit log.
	CreatorIP string `json:"creatorIp,omitempty"`
}

// Session is a registered resume session.
type Session struct {
	ID       string `json:"id"`
	TicketID string `json:"ticketId"`
	// Since is when the link was first paired (Unix ms), so a resumed
	// connection's report is bounded like the first one's.
	Since int64 `json:"since,omitempty"`
}

// StoreStats are point-in-time counts.
type StoreStats struct {
	LiveTickets int
	Sessions    int
}
