package proto

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/zeebo/blake3"
)

// ChunkHash returns the BLAKE3-256 hash of one chunk's data.
func ChunkHash(data []byte) [HashLen]byte {
	return blake3.Sum256(data)
}

// RootHasher computes a file's root: BLAKE3 over a header and the ordered
// chunk hashes, so the receiver can check the whole file from the chunk
// hashes it verified (and recorded for resume) without reading it again.
//
//	root = BLAKE3("ferry/1 root" | size u64 BE | chunkSize u32 BE | h0 | h1 | ...)
type RootHasher struct{ h *blake3.Hasher }

// NewRootHasher starts a root for a file of the given size and chunk size.
func NewRootHasher(size int64, chunkSize int) *RootHasher {
	h := blake3.New()
	var hdr [12 + 8 + 4]byte
	copy(hdr[:], "ferry/1 root")
	binary.BigEndian.PutUint64(hdr[12:], uint64(size))
	binary.BigEndian.PutUint32(hdr[20:], uint32(chunkSize))
	_, _ = h.Write(hdr[:])
	return &RootHasher{h: h}
}

// Add appends the next chunk hash, in index order.
func (r *RootHasher) Add(h *[HashLen]byte) { _, _ = r.h.Write(h[:]) }

// Hex returns the root as lowercase hex.
func (r *RootHasher) Hex() string { return hex.EncodeToString(r.h.Sum(nil)) }
