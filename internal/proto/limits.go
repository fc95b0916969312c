package proto

import "time"

// The TypeScript client takes these, the frame types, the limits and the
// close codes from web/src/protocol/constants_gen.ts, which this writes
// (`make vet` fails when it is stale), along with the case-folding table
// FoldPath uses (fold_gen.ts), so that the browser does not depend on the
// Unicode version it knows.
//go:generate go run ./gen -dir ../../web/src/protocol

// How a receiver grants credit and gives up (PROTOCOL.md §4.2, §4.3, §4.5).
const (
	// MaxBadCopies of one chunk before the receiver gives up.
	MaxBadCopies = 8
	// InFlightBytes is roughly how much the receiver lets the sender have
	// in flight: the credit window is this many bytes of chunks, at least
	// MinWindow chunks.
	InFlightBytes = 16 << 20
	MinWindow     = 8
	// AckBatches: credit goes back in batches of window/AckBatches chunks,
	// so the window is always larger than a batch.
	AckBatches = 8
	// ReceiverIdle is how long a receiver waits for the sender's next
	// message while it waits for one.
	ReceiverIdle = 2 * time.Minute
)

// Reasons of a CloseForbidden close, which clients tell apart
// (PROTOCOL.md §2.6).
const (
	ForbiddenSignIn  = "sign-in required"
	ForbiddenNetwork = "not allowed from this network"
)
