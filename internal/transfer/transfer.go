// Package transfer implements ferry's transfer protocol (docs/PROTOCOL.md §4)
// over any message connection: the sender reads, hashes and sends chunks
// within the receiver's credit; the receiver verifies every chunk before
// writing it, re-requests bad ones, checks each file's root, records
// durable progress so an interrupted transfer resumes from verified chunks.
package transfer

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
)

// Conn is one message-oriented, reliable, ordered connection (a data
// channel). Recv's result is valid until the next Recv.
type Conn interface {
	Send(msg []byte) error
	Recv() ([]byte, error)
	// MaxMessage is the largest message the peer accepts.
	MaxMessage() int
	Close() error
}

// Errors. ErrConnLost means the connection broke and the transfer may
// continue on a new one; the others end the transfer.
var (
	ErrConnLost     = errors.New("transfer: connection lost")
	ErrCanceled     = errors.New("transfer: the other side canceled the transfer")
	ErrDeclined     = errors.New("transfer: the receiver declined the transfer")
	ErrRootMismatch = errors.New("transfer: verification failed: the received file does not match what was sent")
	ErrFileChanged  = errors.New("transfer: a file changed on disk while it was being sent")
	ErrExists       = errors.New("transfer: file already exists")
	ErrProtocol     = errors.New("transfer: protocol error")
	ErrTooLarge     = errors.New("transfer: larger than allowed")
	ErrDiskFull     = errors.New("transfer: not enough disk space")
	// ErrReceivedChanged: a file an earlier run of this transfer finished
	// was modified since. Like ErrDiskFull it leaves the transfer
	// resumable: the sender is not told, and waits.
	ErrReceivedChanged = errors.New("transfer: file changed after this transfer received it")
)

// isDiskFull reports whether err means the file system is full or the
// user's quota is used up.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// PeerError is an error the other side reported.
type PeerError struct {
	Code, Message string
}

func (e *PeerError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("the other side reported an error (%s): %s", e.Code, e.Message)
	}
	return fmt.Sprintf("the other side reported an error (%s)", e.Code)
}

func (e *PeerError) Unwrap() error {
	switch e.Code {
	case proto.CodeRootMismatch:
		return ErrRootMismatch
	case proto.CodeFileChanged:
		return ErrFileChanged
	case proto.CodeTooLarge:
		return ErrTooLarge
	}
	return ErrProtocol
}

// Progress is a snapshot for progress displays.
type Progress struct {
	Total     int64 // bytes in the transfer
	Done      int64 // bytes verified/committed by the receiver (including resumed ones)
	Resumed   int64 // bytes skipped because the receiver already had them
	Files     int
	FilesDone int
	Time      time.Time
}

// The cause stays text: a lost connection whose cause was a canceled
// context must still read as lost (reconnect), not as canceled.
func lost(err error) error { return fmt.Errorf("%w: %v", ErrConnLost, err) }

func protoErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

// chunkLen is the length of chunk i of a file.
func chunkLen(size int64, chunkSize int, i uint32) int {
	off := int64(i) * int64(chunkSize)
	return int(min(int64(chunkSize), size-off))
}

func sendControl(c Conn, m proto.Control) error {
	b, err := proto.MarshalControl(m)
	if err != nil {
		return err
	}
	if err := c.Send(b); err != nil {
		return lost(err)
	}
	return nil
}
