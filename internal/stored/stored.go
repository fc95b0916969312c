// Package stored is the format of stored transfers (PROTOCOL.md §6): keys
// derived from the link's secret, the files as one stream of AES-256-GCM
// records, and a sealed manifest. The server holds only its output.
package stored

import (
	"errors"
)

const (
	// RecordSize is the plaintext size of every record but the last.
	RecordSize = 64 << 10
	// Overhead is what sealing adds to a record (the GCM tag).
	Overhead = 16
	// SealedRecordSize is the size of every sealed record but the last.
	SealedRecordSize = RecordSize + Overhead
	// SaltLen is the length of an upload's salt.
	SaltLen = 16
	// MaxManifest bounds a manifest's plaintext.
	MaxManifest = 64 << 20
	// manifestPad is what a manifest's plaintext is padded to a multiple of.
	manifestPad = 1024
)

var (
	// ErrRecord: a record failed to open (tampered, moved, from elsewhere).
	ErrRecord = errors.New("stored: record does not open")
	// ErrTruncated: the data ended before its final record.
	ErrTruncated = errors.New("stored: data ends early")
	// ErrTrailing: the data goes on after its final record.
	ErrTrailing = errors.New("stored: data after the final record")
	// ErrManifest: the manifest is malformed or does not open.
	ErrManifest = errors.New("stored: manifest does not open")
	// ErrSecret: the secret or id has the wrong shape.
	ErrSecret = errors.New("stored: bad secret or id")
)

// Records returns how many records a stream of total plaintext bytes has:
// at least one, so that every stream ends with a final record.
func Records(total int64) int64 {
	if total <= 0 {
		return 1
	}
	return (total + RecordSize - 1) / RecordSize
}

// SealedSize returns the size of the data object for total plaintext bytes.
func SealedSize(total int64) int64 {
	return total + Records(total)*Overhead
}

// recordLen returns the plaintext length of record i of a stream of total bytes.
func recordLen(total, i int64) int {
	if i == Records(total)-1 {
		return int(total - i*RecordSize)
	}
	return RecordSize
}

// PlainSize returns the plaintext size of a data object of sealed bytes, and
// whether any stream seals to exactly that size.
func PlainSize(sealed int64) (int64, bool) {
	if sealed < Overhead {
		return 0, false
	}
	n := (sealed + SealedRecordSize - 1) / SealedRecordSize
	if sealed-(n-1)*SealedRecordSize < Overhead {
		return 0, false
	}
	plain := sealed - n*Overhead
	return plain, SealedSize(plain) == sealed
}
