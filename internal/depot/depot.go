// Package depot keeps stored transfers on the server: the ciphertext
// (PROTOCOL.md §6) in a Blobs backend, what the server knows about each
// transfer in a Meta store, and the HTTP API, policy and janitor around them.
// The server never holds a key: it cannot open what it keeps.
package depot

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/ferrydev/ferry/internal/stored"
)

// PartSize is the size of every part of a data object but the last: 128
// sealed records (8 MiB), above S3's 5 MiB minimum part, and a whole number
// of records so that a resumed upload starts at a record.
const PartSize = 128 * stored.SealedRecordSize

var (
	ErrNotFound = errors.New("depot: no such transfer")
	ErrExists   = errors.New("depot: transfer exists")
	ErrFull     = errors.New("depot: storage full")
	ErrQuota    = errors.New("depot: quota exceeded")
	ErrUsedUp   = errors.New("depot: download limit reached")
	ErrState    = errors.New("depot: transfer not in that state")
	ErrPart     = errors.New("depot: part out of order or wrong size")
	ErrRange    = errors.New("depot: range outside the object")
)

// Blobs holds the ciphertext of stored transfers: per transfer one data
// object, written as numbered parts of PartSize bytes (the last may be
// shorter), and one small manifest object. Implementations never hold a
// whole part in memory longer than the backend needs, and never a whole object.
type Blobs interface {
	// Begin starts the data object of transfer id and returns an upload
	// handle for the other calls (an S3 multipart upload id, say).
	Begin(ctx context.Context, id string) (upload string, err error)
	// WritePart stores part n (0-based) of an upload, exactly size bytes
	// read from r; when it returns nil the part is durable. Writing a part
	// again replaces it. A backend without space returns an error wrapping ErrFull.
	WritePart(ctx context.Context, id, upload string, n int, r io.Reader, size int64) error
	// Complete joins parts 0…parts−1 into the data object.
	Complete(ctx context.Context, id, upload string, parts int) error
	// PutManifest stores the sealed manifest (at most stored.MaxManifest and a little).
	PutManifest(ctx context.Context, id string, b []byte) error
	// Manifest returns the sealed manifest, or ErrNotFound.
	Manifest(ctx context.Context, id string) ([]byte, error)
	// Read returns the completed data object's bytes [off, off+n), ErrRange
	// if that is not inside the object, or ErrNotFound.
	Read(ctx context.Context, id string, off, n int64) (io.ReadCloser, error)
	// Delete removes everything of transfer id, complete or not, including
	// an upload in progress; deleting what is not there is not an error.
	Delete(ctx context.Context, id string) error
	// List calls fn with every transfer id that has anything stored (the
	// janitor's view, to find what the metadata no longer knows).
	List(ctx context.Context, fn func(id string) error) error
}

// State is where a stored transfer is in its life.
type State string

const (
	Uploading State = "uploading"
	Ready     State = "ready"
	// Gone: removed (expired, used up, or its upload not finished in time);
	// the record stays a while so that receivers learn why.
	Gone State = "gone"
)

// Transfer is what the server knows about one stored transfer.
type Transfer struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner,omitempty"` // account or sender token name; "" for anonymous
	ReadHash  []byte    `json:"readHash"`        // SHA-256 of the read token (§6.1)
	WriteHash []byte    `json:"writeHash"`       // SHA-256 of the write token, issued at creation
	Size      int64     `json:"size"`            // of the data object (sealed)
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	Limit     int       `json:"limit"` // downloads allowed; 0: unlimited
	Used      int       `json:"used"`  // downloads verified
	State     State     `json:"state"`
	Upload    string    `json:"upload"` // the Blobs upload handle while Uploading
	Parts     int       `json:"parts"`  // parts durable so far (0…Parts−1)
}

// Quota bounds what Meta.Create admits: bytes stored by one owner and in
// all (0: no bound).
type Quota struct {
	PerOwner int64
	Total    int64
}

// Meta keeps Transfer records so that they survive a crash and, in a shared
// store, are the same for every instance: a download verified on one
// instance is counted once for all.
type Meta interface {
	// Create adds t if its id is free (ErrExists) and the quota admits its
	// Size beside every stored transfer's (ErrQuota), atomically.
	Create(ctx context.Context, t Transfer, q Quota) error
	// Get returns the record, or ErrNotFound.
	Get(ctx context.Context, id string) (Transfer, error)
	// AddPart records part n as durable: Parts goes from n to n+1; a part
	// recorded before is not an error (Parts stays); any other n is ErrPart.
	AddPart(ctx context.Context, id string, n int) error
	// SetReady marks an upload complete (from Uploading; ErrState otherwise).
	SetReady(ctx context.Context, id string) error
	// CountDownload adds one verified download, unless Limit is reached
	// (ErrUsedUp); it returns Used after the call.
	CountDownload(ctx context.Context, id string) (int, error)
	// SetGone marks a transfer removed: its blobs are gone, its Size no
	// longer counts toward any quota (freed exactly once, atomically), and
	// Get still returns it, State Gone and every other field kept, until
	// Delete. From Uploading or Ready; Gone again changes nothing.
	// AddPart, SetReady and CountDownload on a Gone record are ErrState.
	SetGone(ctx context.Context, id string) error
	// Delete removes the record; removing what is not there is not an
	// error. A Gone record's usage was freed by SetGone: nothing more is.
	Delete(ctx context.Context, id string) error
	// List calls fn with every record.
	List(ctx context.Context, fn func(Transfer) error) error
}
