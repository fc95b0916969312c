// Package proto defines ferry's wire formats: the JSON messages between a
// client and the signaling server, the sealed peer-to-peer signaling payloads,
// and the binary frames of the transfer protocol over the data channel.
// docs/PROTOCOL.md is the normative description; testdata/vectors holds the
// byte-exact examples both the Go and the TypeScript code check.
package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Data channel frame types.
const (
	FrameControl = 0x01
	FrameChunk   = 0x10
	FrameAck     = 0x11
	FrameNack    = 0x12
)

const (
	// ChunkHeaderLen is the size of a CHUNK frame header.
	ChunkHeaderLen = 1 + 1 + 4 + 4 + HashLen
	// HashLen is the size of a BLAKE3 chunk hash.
	HashLen = 32
	ackLen  = 1 + 4 + 8
	nackLen = 1 + 4 + 4
	// MaxControlLen bounds a CONTROL frame; a manifest of many files may be large.
	MaxControlLen = 16 << 20
	// MinChunkSize and MaxChunkSize bound the chunk size a sender may choose.
	MinChunkSize = 1 << 10
	MaxChunkSize = 16 << 20
	// BrowserMaxMessage is the largest data channel message we send to or
	// expect from browsers.
	BrowserMaxMessage = 64 << 10
	// BrowserChunkSize leaves room for the CHUNK header within 64 KiB.
	BrowserChunkSize = BrowserMaxMessage - 64
)

// Chunk flags.
const (
	// FlagResend marks a chunk sent again after a NACK.
	FlagResend = 0x01
)

var (
	ErrShortFrame  = errors.New("proto: frame too short")
	ErrFrameType   = errors.New("proto: unexpected frame type")
	ErrFrameLength = errors.New("proto: bad frame length")
	ErrFlags       = errors.New("proto: unknown flags")
	ErrControl     = errors.New("proto: malformed control message")
)

// Chunk is one CHUNK frame: the data of chunk Index of file File and its
// BLAKE3 hash as computed by the sender.
type Chunk struct {
	Flags byte
	File  uint32
	Index uint32
	Hash  [HashLen]byte
	Data  []byte
}

// AppendChunkHeader appends the 42-byte CHUNK header to b; the data follows.
func AppendChunkHeader(b []byte, flags byte, file, index uint32, hash *[HashLen]byte) []byte {
	b = append(b, FrameChunk, flags)
	b = binary.BigEndian.AppendUint32(b, file)
	b = binary.BigEndian.AppendUint32(b, index)
	return append(b, hash[:]...)
}

// Marshal encodes c as a CHUNK frame.
func (c *Chunk) Marshal() []byte {
	b := make([]byte, 0, ChunkHeaderLen+len(c.Data))
	b = AppendChunkHeader(b, c.Flags, c.File, c.Index, &c.Hash)
	return append(b, c.Data...)
}

// ParseChunk decodes a CHUNK frame. Data aliases b.
func ParseChunk(b []byte) (Chunk, error) {
	if len(b) < ChunkHeaderLen {
		return Chunk{}, ErrShortFrame
	}
	if b[0] != FrameChunk {
		return Chunk{}, ErrFrameType
	}
	c := Chunk{
		Flags: b[1],
		File:  binary.BigEndian.Uint32(b[2:]),
		Index: binary.BigEndian.Uint32(b[6:]),
		Data:  b[ChunkHeaderLen:],
	}
	if c.Flags&^FlagResend != 0 {
		return Chunk{}, ErrFlags
	}
	copy(c.Hash[:], b[10:ChunkHeaderLen])
	return c, nil
}

// Ack returns Credit chunks of sending credit and reports the bytes the
// receiver has committed so far in this connection.
type Ack struct {
	Credit    uint32
	Committed uint64
}

func (a Ack) Marshal() []byte {
	b := make([]byte, 0, ackLen)
	b = append(b, FrameAck)
	b = binary.BigEndian.AppendUint32(b, a.Credit)
	return binary.BigEndian.AppendUint64(b, a.Committed)
}

func ParseAck(b []byte) (Ack, error) {
	if len(b) != ackLen {
		return Ack{}, ErrFrameLength
	}
	if b[0] != FrameAck {
		return Ack{}, ErrFrameType
	}
	return Ack{Credit: binary.BigEndian.Uint32(b[1:]), Committed: binary.BigEndian.Uint64(b[5:])}, nil
}

// Nack asks the sender to send a chunk again because it failed verification.
type Nack struct {
	File  uint32
	Index uint32
}

func (n Nack) Marshal() []byte {
	b := make([]byte, 0, nackLen)
	b = append(b, FrameNack)
	b = binary.BigEndian.AppendUint32(b, n.File)
	return binary.BigEndian.AppendUint32(b, n.Index)
}

func ParseNack(b []byte) (Nack, error) {
	if len(b) != nackLen {
		return Nack{}, ErrFrameLength
	}
	if b[0] != FrameNack {
		return Nack{}, ErrFrameType
	}
	return Nack{File: binary.BigEndian.Uint32(b[1:]), Index: binary.BigEndian.Uint32(b[5:])}, nil
}

// MarshalControl encodes a control message as a CONTROL frame.
func MarshalControl(m Control) ([]byte, error) {
	js, err := EncodeControl(m)
	if err != nil {
		return nil, err
	}
	if len(js) > MaxControlLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameLength, len(js))
	}
	return append([]byte{FrameControl}, js...), nil
}

// ParseControl decodes a CONTROL frame into its typed message.
func ParseControl(b []byte) (Control, error) {
	if len(b) < 1 {
		return nil, ErrShortFrame
	}
	if b[0] != FrameControl {
		return nil, ErrFrameType
	}
	if len(b)-1 > MaxControlLen {
		return nil, ErrFrameLength
	}
	return decodeControl(b[1:])
}
