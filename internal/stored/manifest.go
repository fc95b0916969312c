package stored

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/ferrydev/ferry/internal/proto"
)

const (
	manifestMagic = "FSM1"
	nonceLen      = 12
	manifestHead  = len(manifestMagic) + SaltLen + nonceLen
	// manifestT is the manifest's "t".
	manifestT = "stored"
)

// File is one file of a stored transfer: as in a live manifest, with the
// BLAKE3 root (PROTOCOL.md §4.4) of its contents.
type File struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime,omitempty"`
	Root  string `json:"root"`
}

// Manifest says what a stored transfer's stream holds (PROTOCOL.md §6.3).
type Manifest struct {
	T          string `json:"t"`
	Version    int    `json:"version"`
	Agent      string `json:"agent,omitempty"`
	RecordSize int    `json:"recordSize"`
	ChunkSize  int    `json:"chunkSize"`
	TotalSize  int64  `json:"totalSize"`
	Files      []File `json:"files"`
}

// Live returns the manifest as a live one, checked by the same rules.
func (m *Manifest) Live() *proto.Manifest {
	l := &proto.Manifest{Version: m.Version, Agent: m.Agent, ChunkSize: m.ChunkSize, TotalSize: m.TotalSize,
		Files: make([]proto.File, len(m.Files))}
	for i, f := range m.Files {
		l.Files[i] = proto.File{Path: f.Path, Size: f.Size, Mtime: f.Mtime}
	}
	return l
}

func (m *Manifest) validate() error {
	if m.T != manifestT || m.RecordSize != RecordSize {
		return fmt.Errorf("%w: not a version %d stored manifest", ErrManifest, proto.Version)
	}
	for i, f := range m.Files {
		if b, err := hex.DecodeString(f.Root); err != nil || len(b) != proto.HashLen || hex.EncodeToString(b) != f.Root {
			return fmt.Errorf("%w: file %d root", ErrManifest, i)
		}
	}
	if err := m.Live().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return nil
}

func (k *Keys) manifestAAD() []byte {
	return append(append([]byte(manifestMagic), k.salt[:]...), k.id...)
}

// SealManifest checks m and seals it under the upload's keys.
func (k *Keys) SealManifest(m Manifest) ([]byte, error) {
	js, err := encodeManifest(m)
	if err != nil {
		return nil, err
	}
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	return k.sealManifest(js, nonce), nil
}

// encodeManifest checks m and returns its padded plaintext.
func encodeManifest(m Manifest) ([]byte, error) {
	m.T, m.RecordSize = manifestT, RecordSize
	if err := m.validate(); err != nil {
		return nil, err
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	padded := (len(js) + manifestPad - 1) / manifestPad * manifestPad
	if padded > MaxManifest {
		return nil, fmt.Errorf("%w: %d bytes", ErrManifest, len(js))
	}
	return append(js, bytes.Repeat([]byte{' '}, padded-len(js))...), nil
}

// sealManifest seals a padded plaintext with the given nonce.
func (k *Keys) sealManifest(plain []byte, nonce [nonceLen]byte) []byte {
	out := make([]byte, 0, manifestHead+len(plain)+Overhead)
	out = append(append(append(out, manifestMagic...), k.salt[:]...), nonce[:]...)
	return k.manifest.Seal(out, nonce[:], plain, k.manifestAAD())
}

// OpenManifest opens a sealed manifest with the link's secret and id, checks
// it, and returns it with the keys of its upload.
func OpenManifest(secret []byte, id string, blob []byte) (*Manifest, *Keys, error) {
	if len(blob) < manifestHead+Overhead || len(blob) > manifestHead+MaxManifest+Overhead ||
		string(blob[:len(manifestMagic)]) != manifestMagic {
		return nil, nil, fmt.Errorf("%w: malformed", ErrManifest)
	}
	var salt [SaltLen]byte
	copy(salt[:], blob[len(manifestMagic):])
	k, err := NewKeys(secret, id, salt)
	if err != nil {
		return nil, nil, err
	}
	js, err := k.manifest.Open(nil, blob[len(manifestMagic)+SaltLen:manifestHead], blob[manifestHead:], k.manifestAAD())
	if err != nil {
		return nil, nil, ErrManifest
	}
	// JSON text, then spaces; the same rule as the web client's.
	js = bytes.TrimRight(js, " ")
	var m Manifest
	if !utf8.Valid(js) {
		return nil, nil, fmt.Errorf("%w: not UTF-8", ErrManifest)
	}
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if err := m.validate(); err != nil {
		return nil, nil, err
	}
	return &m, k, nil
}
