package stored

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

var secret = bytes.Repeat([]byte{7}, 16)

const id = "AAECAwQFBgcI"

func keys(t testing.TB, id string, saltByte byte) *Keys {
	t.Helper()
	var salt [SaltLen]byte
	for i := range salt {
		salt[i] = saltByte
	}
	k, err := NewKeys(secret, id, salt)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pattern is the deterministic plaintext the tests and vectors use.
func pattern(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// seal seals plain from record first on, writing in pieces of random size.
func seal(t testing.TB, k *Keys, plain []byte, first int64) []byte {
	t.Helper()
	var out bytes.Buffer
	s := NewSealer(&out, k, int64(len(plain)), first)
	rest := plain[min(int64(len(plain)), first*RecordSize):]
	for len(rest) > 0 {
		n := min(len(rest), 1+mrand.IntN(3*RecordSize/2))
		if _, err := s.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Next() != Records(int64(len(plain))) {
		t.Fatalf("sealer stopped at %d of %d records", s.Next(), Records(int64(len(plain))))
	}
	if first == 0 && int64(out.Len()) != SealedSize(int64(len(plain))) {
		t.Fatalf("sealed %d bytes, want %d", out.Len(), SealedSize(int64(len(plain))))
	}
	return out.Bytes()
}

func open(k *Keys, sealed []byte, total, first int64) ([]byte, error) {
	return io.ReadAll(iotest.OneByteReader(NewOpener(bytes.NewReader(sealed), k, total, first)))
}

var sizes = []int64{0, 1, RecordSize - 1, RecordSize, RecordSize + 1, 3 * RecordSize, 3*RecordSize + 17}

func TestRoundTrip(t *testing.T) {
	k := keys(t, id, 1)
	for _, size := range sizes {
		plain := pattern(size)
		sealed := seal(t, k, plain, 0)
		got, err := open(k, sealed, size, 0)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: %v (%d bytes back)", size, err, len(got))
		}
		// A resumed upload writes exactly the rest; a resumed download
		// reads exactly the rest.
		for first := int64(1); first < Records(size); first++ {
			off := first * SealedRecordSize
			if rest := seal(t, k, plain, first); !bytes.Equal(rest, sealed[off:]) {
				t.Fatalf("size %d: sealing from record %d differs", size, first)
			}
			got, err := open(k, sealed[off:], size, first)
			if err != nil || !bytes.Equal(got, plain[first*RecordSize:]) {
				t.Fatalf("size %d from record %d: %v", size, first, err)
			}
		}
	}
}

func TestSealerSize(t *testing.T) {
	k := keys(t, id, 1)
	for _, size := range sizes {
		s := NewSealer(io.Discard, k, size, 0)
		if _, err := s.Write(pattern(size + 1)); !errors.Is(err, ErrSize) {
			t.Errorf("size %d: writing one byte more: %v", size, err)
		}
		if size == 0 {
			continue
		}
		s = NewSealer(io.Discard, k, size, 0)
		if _, err := s.Write(pattern(size - 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); !errors.Is(err, ErrSize) {
			t.Errorf("size %d: closing one byte short: %v", size, err)
		}
	}
}

func TestTampering(t *testing.T) {
	const size = 3*RecordSize + 17
	k := keys(t, id, 1)
	plain := pattern(size)
	sealed := seal(t, k, plain, 0)
	rec := func(b []byte, i int) []byte { return b[i*SealedRecordSize : min(len(b), (i+1)*SealedRecordSize)] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	other := seal(t, keys(t, "BBECAwQFBgcI", 1), plain, 0) // another transfer, same secret
	again := seal(t, keys(t, id, 2), plain, 0)             // another upload of this link
	flipped := bytes.Clone(sealed)
	flipped[SealedRecordSize+100] ^= 1
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"byte flipped", flipped, ErrRecord},
		{"records swapped", cat(rec(sealed, 1), rec(sealed, 0), sealed[2*SealedRecordSize:]), ErrRecord},
		{"record repeated", cat(rec(sealed, 0), rec(sealed, 0), sealed[2*SealedRecordSize:]), ErrRecord},
		{"record of another transfer", cat(rec(sealed, 0), rec(other, 1), sealed[2*SealedRecordSize:]), ErrRecord},
		{"record of another upload", cat(rec(sealed, 0), rec(again, 1), sealed[2*SealedRecordSize:]), ErrRecord},
		{"final record dropped", sealed[:3*SealedRecordSize], ErrTruncated},
		{"cut mid-record", sealed[:len(sealed)-1], ErrTruncated},
		{"empty", nil, ErrTruncated},
		{"bytes after the final record", cat(sealed, []byte{0}), ErrTrailing},
	}
	for _, c := range cases {
		got, err := open(k, c.data, size, 0)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		// Only whole records that opened come out, in place.
		if (len(got) < len(plain) && len(got)%RecordSize != 0) || !bytes.Equal(got, plain[:len(got)]) {
			t.Errorf("%s: %d bytes of unverified data came out", c.name, len(got))
		}
	}
	// A final record presented as a non-final one, and the reverse, do not open.
	short := seal(t, k, pattern(RecordSize), 0)
	if _, err := open(k, short, 2*RecordSize, 0); !errors.Is(err, ErrRecord) {
		t.Errorf("stream cut after a full record: %v", err)
	}
	if _, err := open(k, sealed[:SealedRecordSize], RecordSize, 0); !errors.Is(err, ErrRecord) {
		t.Errorf("first record taken for a whole stream: %v", err)
	}
}

func testManifest() Manifest {
	return Manifest{Version: 1, Agent: "ferry/test", ChunkSize: 1 << 20, TotalSize: 3, Files: []File{
		{Path: "photos/a.jpg", Size: 1, Mtime: 1767225600000, Root: strings.Repeat("ab", 32)},
		{Path: "b.txt", Size: 2, Root: strings.Repeat("cd", 32)},
	}}
}

func TestManifest(t *testing.T) {
	k := keys(t, id, 1)
	blob, err := k.SealManifest(testManifest())
	if err != nil {
		t.Fatal(err)
	}
	if (len(blob)-manifestHead-Overhead)%manifestPad != 0 {
		t.Fatalf("manifest plaintext of %d bytes is not padded", len(blob)-manifestHead-Overhead)
	}
	m, k2, err := OpenManifest(secret, id, blob)
	if err != nil || m.Files[1].Root != testManifest().Files[1].Root || k2.Salt() != k.Salt() {
		t.Fatalf("%v %+v", err, m)
	}
	// Keys from the manifest open the upload's data.
	sealed := seal(t, k, pattern(5), 0)
	if got, err := open(k2, sealed, 5, 0); err != nil || !bytes.Equal(got, pattern(5)) {
		t.Fatal(err)
	}
	// An old manifest of this link does not open a newer upload's data.
	newer := seal(t, keys(t, id, 2), pattern(5), 0)
	if _, err := open(k2, newer, 5, 0); !errors.Is(err, ErrRecord) {
		t.Fatalf("old manifest opened new data: %v", err)
	}
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x80
		if _, _, err := OpenManifest(secret, id, bad); !errors.Is(err, ErrManifest) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, _, err := OpenManifest(secret, "BBECAwQFBgcI", blob); !errors.Is(err, ErrManifest) {
		t.Fatalf("other id: %v", err)
	}
	if _, _, err := OpenManifest(bytes.Repeat([]byte{8}, 16), id, blob); !errors.Is(err, ErrManifest) {
		t.Fatalf("other secret: %v", err)
	}
	for _, n := range []int{0, manifestHead, manifestHead + Overhead - 1} {
		if _, _, err := OpenManifest(secret, id, blob[:n]); !errors.Is(err, ErrManifest) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

func TestSealManifestRefusesInvalid(t *testing.T) {
	k := keys(t, id, 1)
	for name, change := range map[string]func(*Manifest){
		"same path in other case": func(m *Manifest) { m.Files[1].Path = "PHOTOS/A.JPG"; m.Files[1].Size = 2 },
		"bad root":                func(m *Manifest) { m.Files[0].Root = "AB" },
		"upper-case root":         func(m *Manifest) { m.Files[0].Root = strings.Repeat("AB", 32) },
		"wrong total":             func(m *Manifest) { m.TotalSize = 4 },
		"unsafe path":             func(m *Manifest) { m.Files[0].Path = "../x" },
		"no files":                func(m *Manifest) { m.Files, m.TotalSize = nil, 0 },
	} {
		m := testManifest()
		change(&m)
		if _, err := k.SealManifest(m); !errors.Is(err, ErrManifest) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestReadToken(t *testing.T) {
	a, err := ReadToken(secret)
	if err != nil || len(a) != 22 {
		t.Fatal(a, err)
	}
	if b, _ := ReadToken(bytes.Repeat([]byte{8}, 16)); b == a {
		t.Fatal("read token does not depend on the secret")
	}
	if _, err := ReadToken(secret[:15]); !errors.Is(err, ErrSecret) {
		t.Fatal(err)
	}
}

func FuzzOpenManifest(f *testing.F) {
	k := keys(f, id, 1)
	blob, err := k.SealManifest(testManifest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add([]byte("FSM1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := OpenManifest(secret, id, b)
		if err == nil && m.validate() != nil {
			t.Fatal("opened an invalid manifest")
		}
	})
}

func FuzzOpener(f *testing.F) {
	k := keys(f, id, 1)
	f.Add(seal(f, k, pattern(100), 0), int64(100), int64(0))
	f.Add(seal(f, k, pattern(RecordSize+1), 0), int64(RecordSize+1), int64(0))
	junk := make([]byte, 200)
	_, _ = rand.Read(junk)
	f.Add(junk, int64(184), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, total, first int64) {
		if total < 0 || total > 1<<40 || first < 0 || first > Records(total) {
			return
		}
		got, err := io.ReadAll(NewOpener(bytes.NewReader(b), k, total, first))
		if err == nil && int64(len(got)) != total-min(total, first*RecordSize) {
			t.Fatalf("stream of %d bytes from record %d gave %d bytes", total, first, len(got))
		}
		if err == nil && !bytes.Equal(got, pattern(total)[min(total, first*RecordSize):]) {
			t.Fatal("opened data that was never sealed")
		}
	})
}

func TestPlainSize(t *testing.T) {
	for _, size := range append(sizes, 1<<40+3) {
		if p, ok := PlainSize(SealedSize(size)); !ok || p != size {
			t.Errorf("PlainSize(SealedSize(%d)) = %d, %v", size, p, ok)
		}
	}
	for _, sealed := range []int64{-1, 0, 15, SealedRecordSize + 15, 2*SealedRecordSize + 3} {
		if _, ok := PlainSize(sealed); ok {
			t.Errorf("PlainSize(%d) accepted", sealed)
		}
	}
}
