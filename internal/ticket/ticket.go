// Package ticket encodes and parses ferry tickets and links.
//
// A ticket is a random id, the only part the server ever sees, and a 128-bit
// secret that lives in the URL fragment (browsers never send fragments to the
// server). Text form: "<id>.<secret>", both unpadded base64url.
package ticket

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

const (
	// IDBytes is the size of the random ticket id.
	IDBytes = 9
	// IDLen is the length of the encoded id.
	IDLen = 12
	// SecretBytes is the size of the secret (128 bits).
	SecretBytes = 16
	// SecretLen is the length of the encoded secret.
	SecretLen = 22
	// ReceivePath is the path of the receive page; the ticket follows in the fragment.
	ReceivePath = "/r"
)

var (
	ErrMalformed = errors.New("ticket: malformed ticket")
	ErrBadID     = errors.New("ticket: malformed ticket id")
	ErrBadSecret = errors.New("ticket: malformed secret (was the link copied completely?)")
	ErrBadLink   = errors.New("ticket: not a ferry link")
)

var b64 = base64.RawURLEncoding.Strict()

// Ticket is an id plus the secret from which all keys are derived.
type Ticket struct {
	ID     string
	Secret [SecretBytes]byte
}

// NewID returns a fresh random ticket id (server side).
func NewID() string {
	var b [IDBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return b64.EncodeToString(b[:])
}

// New returns a ticket with the given server-assigned id and a fresh secret.
func New(id string) (Ticket, error) {
	if err := ValidateID(id); err != nil {
		return Ticket{}, err
	}
	t := Ticket{ID: id}
	_, _ = rand.Read(t.Secret[:])
	return t, nil
}

// ValidateID reports whether id has the exact shape of a ticket id.
func ValidateID(id string) error {
	if len(id) != IDLen {
		return ErrBadID
	}
	if _, err := b64.DecodeString(id); err != nil {
		return ErrBadID
	}
	return nil
}

// String returns the text form "<id>.<secret>".
func (t Ticket) String() string {
	return t.ID + "." + b64.EncodeToString(t.Secret[:])
}

// Parse parses the text form "<id>.<secret>". Surrounding whitespace is ignored.
func Parse(s string) (Ticket, error) {
	s = strings.TrimSpace(s)
	id, sec, ok := strings.Cut(s, ".")
	if !ok {
		return Ticket{}, ErrMalformed
	}
	if err := ValidateID(id); err != nil {
		return Ticket{}, err
	}
	if len(sec) != SecretLen {
		return Ticket{}, ErrBadSecret
	}
	raw, err := b64.DecodeString(sec)
	if err != nil || len(raw) != SecretBytes {
		return Ticket{}, ErrBadSecret
	}
	t := Ticket{ID: id}
	copy(t.Secret[:], raw)
	return t, nil
}

// Link returns the receive link for t on the server at base (scheme://host[/prefix]).
func (t Ticket) Link(base *url.URL) string {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + ReceivePath
	u.RawQuery = ""
	u.Fragment = ""
	u.RawFragment = ""
	return u.String() + "#" + t.String()
}

// ParseLink splits a receive link into the server base URL and the ticket.
func ParseLink(link string) (*url.URL, Ticket, error) {
	link = strings.TrimSpace(link)
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, Ticket{}, ErrBadLink
	}
	if !strings.HasSuffix(u.Path, ReceivePath) {
		return nil, Ticket{}, fmt.Errorf("%w: path must end in %s", ErrBadLink, ReceivePath)
	}
	frag := u.EscapedFragment()
	if frag == "" {
		return nil, Ticket{}, fmt.Errorf("%w: the part after # is missing", ErrBadLink)
	}
	t, err := Parse(frag)
	if err != nil {
		return nil, Ticket{}, err
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, ReceivePath)}
	return base, t, nil
}
