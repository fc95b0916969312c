// Package handshake implements ferry's end-to-end sealed signaling: the
// HELLO/CONFIRM exchange that proves both peers hold the same secret, key
// derivation, and the AEAD sealing of SDP and ICE messages that the server
// relays but cannot read.
//
// Both the browser (Web Crypto) and the Go peer implement exactly this; the
// byte layouts are in docs/PROTOCOL.md and testdata/vectors/handshake.json.
package handshake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
)

// Version is the handshake version carried in HELLO.
const Version = 1

// Frame types of the peer-to-peer messages relayed by the server.
const (
	TypeHello   = 0x01
	TypeConfirm = 0x02
	TypeSealed  = 0x03
)

const (
	NonceLen   = 16
	helloLen   = 3 + NonceLen
	confirmLen = 1 + sha256.Size
	sealedHdr  = 1 + 8
	// MaxPlaintext bounds one sealed message, well under the server's
	// per-message limit.
	MaxPlaintext = 60 << 10
	// PhraseWords is the number of words in the verification phrase.
	PhraseWords = 4
)

// Role distinguishes the two ends. The sender created the ticket.
type Role byte

const (
	Sender   Role = 'S'
	Receiver Role = 'R'
)

func (r Role) Other() Role {
	if r == Sender {
		return Receiver
	}
	return Sender
}

func (r Role) valid() bool { return r == Sender || r == Receiver }

var (
	ErrMalformed    = errors.New("handshake: malformed frame")
	ErrVersion      = errors.New("handshake: unsupported handshake version")
	ErrRole         = errors.New("handshake: peer claims our role")
	ErrWrongKey     = errors.New("handshake: key confirmation failed (wrong secret)")
	ErrDecrypt      = errors.New("handshake: sealed message failed authentication")
	ErrOutOfOrder   = errors.New("handshake: sealed message out of order")
	ErrTooLarge     = errors.New("handshake: sealed message too large")
	ErrNotConfirmed = errors.New("handshake: peer not confirmed yet")
)

//go:embed words.txt
var wordsTxt string

// Words is the 256-word list used for verification phrases.
var words = strings.Fields(wordsTxt)

// Hello is the first frame each side sends.
type Hello struct {
	Version byte
	Role    Role
	Nonce   [NonceLen]byte
}

// NewHello returns a HELLO with a fresh random nonce.
func NewHello(role Role) Hello {
	h := Hello{Version: Version, Role: role}
	_, _ = rand.Read(h.Nonce[:])
	return h
}

// Marshal encodes h: 0x01 | version | role | nonce[16].
func (h Hello) Marshal() []byte {
	b := make([]byte, 0, helloLen)
	b = append(b, TypeHello, h.Version, byte(h.Role))
	return append(b, h.Nonce[:]...)
}

// ParseHello decodes a HELLO frame.
func ParseHello(b []byte) (Hello, error) {
	if len(b) != helloLen || b[0] != TypeHello {
		return Hello{}, ErrMalformed
	}
	h := Hello{Version: b[1], Role: Role(b[2])}
	if h.Version != Version {
		return Hello{}, ErrVersion
	}
	if !h.Role.valid() {
		return Hello{}, ErrMalformed
	}
	copy(h.Nonce[:], b[3:])
	return h, nil
}

// Keys holds everything derived from one HELLO exchange.
type Keys struct {
	role    Role
	confirm []byte
	send    *Sealer
	recv    *Opener
	// Phrase is the verification phrase both sides display.
	Phrase []string
	// SessionID names the post-handshake resume session to the server.
	SessionID string
	// SessionSecret is the input key material of later resume handshakes.
	SessionSecret []byte
}

func expand(prk []byte, label, contextID string, n int) []byte {
	k, err := hkdf.Expand(sha256.New, prk, "ferry/1 "+label+"\x00"+contextID, n)
	if err != nil {
		panic(err) // only for n > 255*32
	}
	return k
}

// Derive computes the session keys. ikm is the ticket secret (or, when
// resuming, a session secret); contextID the ticket id (or session id).
// local and remote are the two HELLOs; their roles must differ.
func Derive(ikm []byte, contextID string, local, remote Hello) (*Keys, error) {
	if local.Role == remote.Role {
		return nil, ErrRole
	}
	s, r := local, remote
	if local.Role == Receiver {
		s, r = remote, local
	}
	salt := make([]byte, 0, 7+2*NonceLen)
	salt = append(salt, "ferry/1"...)
	salt = append(salt, s.Nonce[:]...)
	salt = append(salt, r.Nonce[:]...)
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	s2r := expand(prk, "seal s2r", contextID, 32)
	r2s := expand(prk, "seal r2s", contextID, 32)
	sendKey, recvKey := s2r, r2s
	if local.Role == Receiver {
		sendKey, recvKey = r2s, s2r
	}
	k := &Keys{
		role:          local.Role,
		confirm:       expand(prk, "confirm", contextID, 32),
		send:          newSealer(sendKey),
		recv:          newOpener(recvKey),
		SessionID:     base64.RawURLEncoding.EncodeToString(expand(prk, "session id", contextID, 16)),
		SessionSecret: expand(prk, "session secret", contextID, 32),
	}
	pb := expand(prk, "phrase", contextID, PhraseWords)
	for _, b := range pb {
		k.Phrase = append(k.Phrase, words[b])
	}
	return k, nil
}

func (k *Keys) mac(role Role) []byte {
	m := hmac.New(sha256.New, k.confirm)
	m.Write([]byte("ferry/1 confirm"))
	m.Write([]byte{byte(role)})
	return m.Sum(nil)
}

// Confirm returns our CONFIRM frame: 0x02 | HMAC-SHA256(k_confirm, "ferry/1 confirm" | role).
func (k *Keys) Confirm() []byte {
	return append([]byte{TypeConfirm}, k.mac(k.role)...)
}

// CheckConfirm verifies the peer's CONFIRM frame. A failure means the peer
// does not hold the same secret; the caller must abort the ticket.
func (k *Keys) CheckConfirm(b []byte) error {
	if len(b) != confirmLen || b[0] != TypeConfirm {
		return ErrMalformed
	}
	if !hmac.Equal(b[1:], k.mac(k.role.Other())) {
		return ErrWrongKey
	}
	return nil
}

// Seal seals one signaling message for the peer.
func (k *Keys) Seal(plaintext []byte) ([]byte, error) { return k.send.Seal(plaintext) }

// Open opens one sealed frame from the peer.
func (k *Keys) Open(frame []byte) ([]byte, error) { return k.recv.Open(frame) }

// Sealer seals with AES-256-GCM; the nonce is a per-direction counter.
type Sealer struct {
	aead cipher.AEAD
	ctr  uint64
}

// Opener opens frames from one Sealer, strictly in order.
type Opener struct {
	aead cipher.AEAD
	next uint64
}

func newAEAD(key []byte) cipher.AEAD {
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(blk)
	if err != nil {
		panic(err)
	}
	return a
}

func newSealer(key []byte) *Sealer { return &Sealer{aead: newAEAD(key)} }
func newOpener(key []byte) *Opener { return &Opener{aead: newAEAD(key)} }

func nonce(ctr uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], ctr)
	return n
}

// Seal returns 0x03 | counter u64 BE | AES-GCM(plaintext), with the 9-byte
// header as additional data.
func (s *Sealer) Seal(plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, ErrTooLarge
	}
	out := make([]byte, sealedHdr, sealedHdr+len(plaintext)+s.aead.Overhead())
	out[0] = TypeSealed
	binary.BigEndian.PutUint64(out[1:], s.ctr)
	out = s.aead.Seal(out, nonce(s.ctr), plaintext, out[:sealedHdr])
	s.ctr++
	return out, nil
}

// Open authenticates and decrypts a frame made by the peer's Sealer.
func (o *Opener) Open(frame []byte) ([]byte, error) {
	if len(frame) < sealedHdr+o.aead.Overhead() || frame[0] != TypeSealed {
		return nil, ErrMalformed
	}
	if len(frame) > sealedHdr+MaxPlaintext+o.aead.Overhead() {
		return nil, ErrTooLarge
	}
	ctr := binary.BigEndian.Uint64(frame[1:])
	if ctr != o.next {
		return nil, ErrOutOfOrder
	}
	pt, err := o.aead.Open(nil, nonce(ctr), frame[sealedHdr:], frame[:sealedHdr])
	if err != nil {
		return nil, ErrDecrypt
	}
	o.next++
	return pt, nil
}

// FrameType returns the type byte of a peer frame, or 0 for an empty one.
func FrameType(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
