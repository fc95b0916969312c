package stored

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/vectors"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors")

type streamVector struct {
	Total     int64  `json:"total"` // plaintext: byte i is i mod 251
	SealedHex string `json:"sealedHex,omitempty"`
	SealedSHA string `json:"sealedSha256"`
	FinalHex  string `json:"finalHex,omitempty"` // the last sealed record, if short
}

// A change to the sealed stream of the stream vector with Total 2·RecordSize+100
// and the error a receiver must report for it.
type tamperVector struct {
	Name   string `json:"name"`
	Op     string `json:"op"` // flip: byte At ^= 1; truncate: keep At bytes; swap: records At and B; append: one 0 byte
	At     int64  `json:"at,omitempty"`
	B      int64  `json:"b,omitempty"`
	Record string `json:"error"` // "record", "truncated" or "trailing"
}

type manifestVector struct {
	Name      string `json:"name"`
	SealedHex string `json:"sealedHex"`
	Plaintext string `json:"plaintext,omitempty"` // for the valid one
	Error     string `json:"error,omitempty"`     // "manifest" when it must be refused
}

type storedVectors struct {
	SecretHex  string           `json:"secretHex"`
	ID         string           `json:"id"`
	SaltHex    string           `json:"saltHex"`
	ReadToken  string           `json:"readToken"`
	RecordSize int              `json:"recordSize"`
	Streams    []streamVector   `json:"streams"`
	Tampered   []tamperVector   `json:"tampered"`
	Manifests  []manifestVector `json:"manifests"`
}

const tamperTotal = 2*RecordSize + 100

func tamper(sealed []byte, v tamperVector) []byte {
	b := bytes.Clone(sealed)
	switch v.Op {
	case "flip":
		b[v.At] ^= 1
	case "truncate":
		b = b[:v.At]
	case "swap":
		ra := bytes.Clone(b[v.At*SealedRecordSize : (v.At+1)*SealedRecordSize])
		copy(b[v.At*SealedRecordSize:], b[v.B*SealedRecordSize:(v.B+1)*SealedRecordSize])
		copy(b[v.B*SealedRecordSize:], ra)
	case "append":
		b = append(b, 0)
	}
	return b
}

func TestVectors(t *testing.T) {
	k := keys(t, id, 0x5a)
	salt := k.Salt()
	token, err := ReadToken(secret)
	if err != nil {
		t.Fatal(err)
	}
	v := storedVectors{SecretHex: hex.EncodeToString(secret), ID: id, SaltHex: hex.EncodeToString(salt[:]),
		ReadToken: token, RecordSize: RecordSize}
	var tamperBase []byte
	for _, total := range []int64{0, 100, RecordSize, tamperTotal} {
		sealed := seal(t, k, pattern(total), 0)
		sum := sha256.Sum256(sealed)
		sv := streamVector{Total: total, SealedSHA: hex.EncodeToString(sum[:])}
		if final := sealed[(Records(total)-1)*SealedRecordSize:]; len(final) < 1024 {
			sv.FinalHex = hex.EncodeToString(final)
		}
		if len(sealed) < 1024 {
			sv.SealedHex = hex.EncodeToString(sealed)
		}
		v.Streams = append(v.Streams, sv)
		if total == tamperTotal {
			tamperBase = sealed
		}
	}
	v.Tampered = []tamperVector{
		{Name: "a byte of record 1 flipped", Op: "flip", At: SealedRecordSize + 7, Record: "record"},
		{Name: "a tag byte of the final record flipped", Op: "flip", At: int64(len(tamperBase) - 1), Record: "record"},
		{Name: "records 0 and 1 swapped", Op: "swap", At: 0, B: 1, Record: "record"},
		{Name: "final record dropped", Op: "truncate", At: 2 * SealedRecordSize, Record: "truncated"},
		{Name: "cut inside the final record", Op: "truncate", At: int64(len(tamperBase) - 5), Record: "truncated"},
		{Name: "a byte after the final record", Op: "append", Record: "trailing"},
	}
	for _, tv := range v.Tampered {
		want := map[string]error{"record": ErrRecord, "truncated": ErrTruncated, "trailing": ErrTrailing}[tv.Record]
		if _, err := open(k, tamper(tamperBase, tv), tamperTotal, 0); !errorIs(err, want) {
			t.Fatalf("%s: %v, want %v", tv.Name, err, want)
		}
	}

	var nonce [nonceLen]byte
	for i := range nonce {
		nonce[i] = byte(0xa0 + i)
	}
	plain, err := encodeManifest(testManifest())
	if err != nil {
		t.Fatal(err)
	}
	good := k.sealManifest(plain, nonce)
	v.Manifests = append(v.Manifests, manifestVector{Name: "valid", SealedHex: hex.EncodeToString(good), Plaintext: string(plain)})
	flipped := bytes.Clone(good)
	flipped[manifestHead+3] ^= 1
	v.Manifests = append(v.Manifests, manifestVector{Name: "a ciphertext byte flipped", SealedHex: hex.EncodeToString(flipped), Error: "manifest"})
	otherSalt := bytes.Clone(good)
	otherSalt[len(manifestMagic)] ^= 1
	v.Manifests = append(v.Manifests, manifestVector{Name: "salt changed", SealedHex: hex.EncodeToString(otherSalt), Error: "manifest"})
	// Sealed correctly, but not a valid manifest: refused after opening.
	for name, js := range map[string]string{
		"paths equal after simple lowercase (İ→i)": `{"t":"stored","version":1,"recordSize":65536,"chunkSize":1024,"totalSize":2,"files":[{"path":"İ.txt","size":1,"root":"` + hex64 + `"},{"path":"i.txt","size":1,"root":"` + hex64 + `"}]}`,
		"record size not 65536":                    `{"t":"stored","version":1,"recordSize":1024,"chunkSize":1024,"totalSize":1,"files":[{"path":"a","size":1,"root":"` + hex64 + `"}]}`,
		"root not 64 lower-case hex":               `{"t":"stored","version":1,"recordSize":65536,"chunkSize":1024,"totalSize":1,"files":[{"path":"a","size":1,"root":"AB"}]}`,
		"a live manifest":                          `{"t":"manifest","version":1,"recordSize":65536,"chunkSize":1024,"totalSize":1,"files":[{"path":"a","size":1,"root":"` + hex64 + `"}]}`,
		"not JSON":                                 `{"t":"stored",`,
		"bytes after the JSON":                     `{"t":"stored","version":1,"recordSize":65536,"chunkSize":1024,"totalSize":1,"files":[{"path":"a","size":1,"root":"` + hex64 + `"}]} x`,
	} {
		sealed := k.sealManifest([]byte(js), nonce)
		if _, _, err := OpenManifest(secret, id, sealed); !errorIs(err, ErrManifest) {
			t.Fatalf("%s: %v", name, err)
		}
		v.Manifests = append(v.Manifests, manifestVector{Name: name, SealedHex: hex.EncodeToString(sealed), Error: "manifest"})
	}
	for _, mv := range v.Manifests[:1] {
		b, _ := hex.DecodeString(mv.SealedHex)
		if _, _, err := OpenManifest(secret, id, b); err != nil {
			t.Fatal(err)
		}
	}
	sortManifests(v.Manifests[3:])
	vectors.Check(t, "stored.json", v, *update)
}

var hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func errorIs(err, target error) bool { return err != nil && errors.Is(err, target) }

func sortManifests(ms []manifestVector) {
	slices.SortFunc(ms, func(a, b manifestVector) int { return strings.Compare(a.Name, b.Name) })
}
