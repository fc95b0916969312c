package stored

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

const (
	label       = "ferry/1 stored"
	recordLabel = "ferry/1 stored record"
)

// Keys seal and open one upload of one transfer.
type Keys struct {
	id       string
	salt     [SaltLen]byte
	data     cipher.AEAD
	manifest cipher.AEAD
}

func checkSecret(secret []byte, id string) error {
	if len(secret) != 16 || id == "" || len(id) > 64 {
		return ErrSecret
	}
	return nil
}

func expand(prk []byte, name, id string, n int) ([]byte, error) {
	return hkdf.Expand(sha256.New, prk, label+" "+name+"\x00"+id, n)
}

// NewKeys derives the keys of the upload with this salt (PROTOCOL.md §6.1).
func NewKeys(secret []byte, id string, salt [SaltLen]byte) (*Keys, error) {
	if err := checkSecret(secret, id); err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, secret, append([]byte(label), salt[:]...))
	if err != nil {
		return nil, err
	}
	k := &Keys{id: id, salt: salt}
	for _, x := range []struct {
		name string
		aead *cipher.AEAD
	}{{"data", &k.data}, {"manifest", &k.manifest}} {
		key, err := expand(prk, x.name, id, 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		if *x.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Salt returns the upload's salt.
func (k *Keys) Salt() [SaltLen]byte { return k.salt }

// ReadToken returns the token a receiver shows the server to fetch a stored
// transfer; the server keeps only its SHA-256 (PROTOCOL.md §6.1).
func ReadToken(secret []byte) (string, error) {
	if len(secret) != 16 {
		return "", ErrSecret
	}
	prk, err := hkdf.Extract(sha256.New, secret, []byte(label))
	if err != nil {
		return "", err
	}
	t, err := expand(prk, "read", "", 16)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

func (k *Keys) recordNonceAAD(i int64, final bool) (nonce [12]byte, aad []byte) {
	binary.BigEndian.PutUint64(nonce[4:], uint64(i))
	aad = make([]byte, 0, len(recordLabel)+1+len(k.id)+9)
	aad = append(aad, recordLabel...)
	aad = append(aad, 0)
	aad = append(aad, k.id...)
	aad = binary.BigEndian.AppendUint64(aad, uint64(i))
	if final {
		aad = append(aad, 1)
	} else {
		aad = append(aad, 0)
	}
	return nonce, aad
}

// SealRecord appends record i (final if it is the stream's last) to dst.
func (k *Keys) SealRecord(dst, plain []byte, i int64, final bool) []byte {
	if len(plain) > RecordSize || (!final && len(plain) != RecordSize) {
		panic(fmt.Sprintf("stored: record %d of %d bytes", i, len(plain)))
	}
	nonce, aad := k.recordNonceAAD(i, final)
	return k.data.Seal(dst, nonce[:], plain, aad)
}

// OpenRecord appends the plaintext of sealed record i to dst.
func (k *Keys) OpenRecord(dst, sealed []byte, i int64, final bool) ([]byte, error) {
	if len(sealed) < Overhead || len(sealed) > SealedRecordSize {
		return nil, fmt.Errorf("%w: record %d", ErrRecord, i)
	}
	nonce, aad := k.recordNonceAAD(i, final)
	out, err := k.data.Open(dst, nonce[:], sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: record %d", ErrRecord, i)
	}
	return out, nil
}
