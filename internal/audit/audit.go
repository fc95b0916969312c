// Package audit writes ferry's audit stream: one JSON object per line for
// every ticket created, joined, completed or failed, with time, client
// address, path type and bytes. It never contains keys, secrets or file
// contents, and file names only when the operator asks for them.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event kinds.
const (
	TicketCreated     = "ticket_created"
	TicketJoined      = "ticket_joined"
	TicketExpired     = "ticket_expired"
	TicketRejected    = "ticket_rejected"
	WrongKey          = "wrong_key"
	SessionResumed    = "session_resumed"
	TransferCompleted = "transfer_completed"
	TransferFailed    = "transfer_failed"
	TransferCanceled  = "transfer_canceled"
	RelayReleased     = "relay_released"
)

// Event is one audit record.
type Event struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Ticket string    `json:"ticket,omitempty"`
	// Role is "sender" or "receiver".
	Role string `json:"role,omitempty"`
	IP   string `json:"ip,omitempty"`
	// User is the signed-in sender, when sign-in is on.
	User   string   `json:"user,omitempty"`
	Path   string   `json:"path,omitempty"`
	Bytes  int64    `json:"bytes,omitempty"`
	Files  int      `json:"files,omitempty"`
	Names  []string `json:"names,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// Log records events to a writer and keeps the most recent ones for the
// admin page.
type Log struct {
	names bool
	now   func() time.Time

	mu     sync.Mutex
	w      io.Writer
	recent []Event
	next   int
	full   bool
	errs   int
}

// New returns a Log writing to w (nil: keep recent events only), keeping
// the last keep events; file names are dropped unless names is set.
func New(w io.Writer, names bool, keep int, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{w: w, names: names, now: now, recent: make([]Event, max(keep, 1))}
}

// Open opens an audit destination: "-" is stdout, anything else a file
// appended to (created 0600: the log has client addresses).
func Open(path string) (io.WriteCloser, error) {
	if path == "-" {
		return nopCloser{os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Record writes e (stamping its time if unset).
func (l *Log) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	if !l.names {
		e.Names = nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recent[l.next] = e
	l.next = (l.next + 1) % len(l.recent)
	if l.next == 0 {
		l.full = true
	}
	if l.w == nil {
		return
	}
	b, err := json.Marshal(e)
	if err == nil {
		_, err = l.w.Write(append(b, '\n'))
	}
	if err != nil {
		l.errs++ // a full disk must not stop transfers; the admin page shows it
	}
}

// Recent returns up to n of the latest events, newest first.
func (l *Log) Recent(n int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.next
	if l.full {
		size = len(l.recent)
	}
	n = min(n, size)
	out := make([]Event, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.recent[(l.next-i+len(l.recent))%len(l.recent)])
	}
	return out
}

// WriteErrors is how many records could not be written.
func (l *Log) WriteErrors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}
