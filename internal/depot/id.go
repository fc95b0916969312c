package depot

import "errors"

// ErrBadID: a transfer id (or upload handle) that no backend stores: not
// 1…64 characters of unpadded base64url. Backends check every id they are
// given, so that one can never name a path or key outside its own.
var ErrBadID = errors.New("depot: malformed transfer id")

// MaxIDLen bounds a transfer id (the server's ids are shorter).
const MaxIDLen = 64

// CheckID returns ErrBadID unless id is 1…MaxIDLen characters of the
// base64url alphabet (A–Z a–z 0–9 - _).
func CheckID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return ErrBadID
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return ErrBadID
		}
	}
	return nil
}
