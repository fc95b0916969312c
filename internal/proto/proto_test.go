package proto_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/vectors"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors")

func TestChunkRoundTrip(t *testing.T) {
	c := proto.Chunk{Flags: proto.FlagResend, File: 3, Index: 1 << 20, Data: []byte("payload")}
	c.Hash = proto.ChunkHash(c.Data)
	got, err := proto.ParseChunk(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.Flags != c.Flags || got.File != c.File || got.Index != c.Index || got.Hash != c.Hash || !bytes.Equal(got.Data, c.Data) {
		t.Fatalf("round trip: %+v", got)
	}
	bad := c.Marshal()
	bad[1] = 0x80
	if _, err := proto.ParseChunk(bad); !errors.Is(err, proto.ErrFlags) {
		t.Fatalf("unknown flag accepted: %v", err)
	}
	if _, err := proto.ParseChunk(bad[:41]); !errors.Is(err, proto.ErrShortFrame) {
		t.Fatalf("short chunk: %v", err)
	}
}

func TestControlRoundTrip(t *testing.T) {
	one := 1
	msgs := []proto.Control{
		&proto.Manifest{Version: 1, Agent: "t", ChunkSize: 65472, TotalSize: 5, Files: []proto.File{{Path: "a/b.txt", Size: 5, Mtime: 1}}},
		&proto.Accept{Window: 64, Resume: []proto.ResumeFile{{File: 0, Have: []proto.Range{{0, 3}}}}},
		&proto.Decline{Reason: "no"}, &proto.Cancel{}, &proto.EOF{File: 0, Root: strings.Repeat("ab", 32)},
		&proto.Verified{File: 2}, &proto.Done{}, &proto.Complete{},
		&proto.Error{Code: proto.CodeRootMismatch, File: &one, Message: "x"},
	}
	for _, m := range msgs {
		js, err := proto.EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(js, []byte(`{"t":"`+m.T()+`"`)) {
			t.Fatalf("encoding does not start with t: %s", js)
		}
		got, err := proto.ParseControl(append([]byte{proto.FrameControl}, js...))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		js2, _ := proto.EncodeControl(got)
		if !bytes.Equal(js, js2) {
			t.Fatalf("round trip %s != %s", js, js2)
		}
	}
}

func TestManifestValidation(t *testing.T) {
	base := func() *proto.Manifest {
		return &proto.Manifest{Version: 1, ChunkSize: 65472, TotalSize: 3, Files: []proto.File{{Path: "a", Size: 1}, {Path: "d/b", Size: 2}}}
	}
	tests := []struct {
		name string
		mod  func(m *proto.Manifest)
	}{
		{"version", func(m *proto.Manifest) { m.Version = 2 }},
		{"chunk small", func(m *proto.Manifest) { m.ChunkSize = 10 }},
		{"chunk large", func(m *proto.Manifest) { m.ChunkSize = 1 << 30 }},
		{"no files", func(m *proto.Manifest) { m.Files = nil; m.TotalSize = 0 }},
		{"total", func(m *proto.Manifest) { m.TotalSize = 4 }},
		{"negative", func(m *proto.Manifest) { m.Files[0].Size = -1; m.TotalSize = 1 }},
		{"dup", func(m *proto.Manifest) { m.Files[1].Path = "A"; m.Files[1].Size = 2 }},
		{"file and dir", func(m *proto.Manifest) { m.Files[1].Path = "a/x" }},
		{"absolute", func(m *proto.Manifest) { m.Files[0].Path = "/etc/passwd" }},
		{"dotdot", func(m *proto.Manifest) { m.Files[0].Path = "x/../../y" }},
		{"backslash", func(m *proto.Manifest) { m.Files[0].Path = `..\x` }},
		{"drive", func(m *proto.Manifest) { m.Files[0].Path = `C:x` }},
		{"nul", func(m *proto.Manifest) { m.Files[0].Path = "a\x00b" }},
		{"empty elem", func(m *proto.Manifest) { m.Files[0].Path = "a//b" }},
		{"trailing slash", func(m *proto.Manifest) { m.Files[0].Path = "a/" }},
	}
	js, _ := proto.EncodeControl(base())
	if _, err := proto.ParseControl(append([]byte{1}, js...)); err != nil {
		t.Fatalf("base manifest rejected: %v", err)
	}
	for _, tc := range tests {
		m := base()
		tc.mod(m)
		js, _ := proto.EncodeControl(m)
		if _, err := proto.ParseControl(append([]byte{1}, js...)); err == nil {
			t.Errorf("%s: accepted %s", tc.name, js)
		}
	}
}

type frameVector struct {
	Name  string `json:"name"`
	Frame string `json:"frameHex"`
	JSON  string `json:"json,omitempty"`
}

type rootVector struct {
	Size      int64    `json:"size"`
	ChunkSize int      `json:"chunkSize"`
	Data      string   `json:"data"` // the file is this pattern repeated to Size bytes
	Chunks    []string `json:"chunkHashes"`
	Root      string   `json:"root"`
}

func pattern(p string, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = p[i%len(p)]
	}
	return b
}

// TestVectors pins frame encodings and roots for the TypeScript client.
func TestVectors(t *testing.T) {
	data := []byte("hello, ferry")
	c := proto.Chunk{File: 1, Index: 2, Hash: proto.ChunkHash(data), Data: data}
	ctl, _ := proto.MarshalControl(&proto.Accept{Window: 32})
	frames := []frameVector{
		{Name: "chunk", Frame: hex.EncodeToString(c.Marshal())},
		{Name: "ack", Frame: hex.EncodeToString(proto.Ack{Credit: 5, Committed: 1 << 33}.Marshal())},
		{Name: "nack", Frame: hex.EncodeToString(proto.Nack{File: 7, Index: 258}.Marshal())},
		{Name: "control", Frame: hex.EncodeToString(ctl), JSON: string(ctl[1:])},
	}
	vectors.Check(t, "frames.json", frames, *update)

	var roots []rootVector
	for _, tc := range []struct {
		size  int64
		chunk int
	}{{0, 1024}, {1, 1024}, {1024, 1024}, {3000, 1024}, {200000, 65472}} {
		file := pattern("ferry", tc.size)
		rh := proto.NewRootHasher(tc.size, tc.chunk)
		v := rootVector{Size: tc.size, ChunkSize: tc.chunk, Data: "ferry"}
		for off := int64(0); off < tc.size; off += int64(tc.chunk) {
			h := proto.ChunkHash(file[off:min(off+int64(tc.chunk), tc.size)])
			rh.Add(&h)
			v.Chunks = append(v.Chunks, hex.EncodeToString(h[:]))
		}
		if got := proto.ChunkCount(tc.size, tc.chunk); int(got) != len(v.Chunks) {
			t.Fatalf("ChunkCount(%d,%d) = %d, want %d", tc.size, tc.chunk, got, len(v.Chunks))
		}
		v.Root = rh.Hex()
		roots = append(roots, v)
	}
	vectors.Check(t, "roots.json", roots, *update)
}

func FuzzParseChunk(f *testing.F) {
	c := proto.Chunk{File: 1, Index: 2, Data: []byte("x")}
	f.Add(c.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := proto.ParseChunk(b)
		if err == nil && !bytes.Equal(c.Marshal(), b) {
			t.Fatal("chunk does not round-trip")
		}
	})
}

func FuzzParseAckNack(f *testing.F) {
	f.Add(proto.Ack{Credit: 1, Committed: 2}.Marshal())
	f.Add(proto.Nack{File: 1, Index: 2}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := proto.ParseAck(b); err == nil && !bytes.Equal(a.Marshal(), b) {
			t.Fatal("ack does not round-trip")
		}
		if n, err := proto.ParseNack(b); err == nil && !bytes.Equal(n.Marshal(), b) {
			t.Fatal("nack does not round-trip")
		}
	})
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`{"t":"manifest","version":1,"chunkSize":1024,"totalSize":1,"files":[{"path":"a","size":1}]}`,
		`{"t":"accept","window":4,"resume":[{"file":0,"have":[[0,2]]}]}`,
		`{"t":"eof","file":0,"root":"` + strings.Repeat("0", 64) + `"}`,
		`{"t":"error","code":"io"}`, `{"t":"done"}`,
	} {
		f.Add(append([]byte{1}, s...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := proto.ParseControl(b)
		if err != nil {
			return
		}
		// Whatever we accept must re-encode to something we accept again.
		js, err := proto.EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := proto.ParseControl(append([]byte{1}, js...)); err != nil {
			t.Fatalf("re-encoded control rejected: %v: %s", err, js)
		}
		if man, ok := m.(*proto.Manifest); ok {
			for _, f := range man.Files {
				if proto.ValidatePath(f.Path) != nil {
					t.Fatalf("unsafe path accepted: %q", f.Path)
				}
			}
		}
	})
}
