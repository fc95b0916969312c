package transfer_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/ferrydev/ferry/internal/vectors"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors")

// pathVectors are the receiver's name rules, shared with the TypeScript
// receiver through testdata/vectors/paths.json.
var pathVectors = []struct{ path, reason string }{
	{"a.txt", ""},
	{"photos/2024/a.jpg", ""},
	{"a b/c d.txt", ""},
	{"Ünïcödé/ñame.txt", ""},
	{"日本語.txt", ""},
	{"family \U0001F468\u200d\U0001F469\u200d\U0001F467.png", ""}, // zero width joiner
	{"\u2764\ufe0f.txt", ""},                               // variation selector
	{"\u0645\u06cc\u200c\u062e\u0648\u0627\u0645.txt", ""}, // Persian with zero width non-joiner
	{"console.log", ""},
	{"CONTRACT.pdf", ""},
	{"nul-ish", ""},
	{"\u0130stanbul.txt", ""},
	{"", proto.PathEmpty},
	{strings.Repeat("a/", 2048) + "b", proto.PathTooLong},
	{"/abs", proto.PathAbsolute},
	{"a/../b", proto.PathDotElement},
	{"./a", proto.PathDotElement},
	{"a//b", proto.PathEmptyElement},
	{"a/", proto.PathEmptyElement},
	{strings.Repeat("x", 256), proto.PathElementTooLong},
	{"C:x", proto.PathDriveLetter},
	{`a\b`, proto.PathBackslash},
	{"a\x00b", proto.PathControl},
	{"a\x1b[2Jb", proto.PathControl},
	{"a\nb", proto.PathControl},
	{"a\x7f", proto.PathControl},
	{"a\u0085b", proto.PathControl},   // C1: next line
	{"a\u009b2Jb", proto.PathControl}, // C1: control sequence introducer
	{"a\u2028b", proto.PathControl},
	{"invoice\u202efdp.exe", proto.PathBidi},
	{"a\u202ab", proto.PathBidi},
	{"a\u202cb", proto.PathBidi},
	{"a\u2066b", proto.PathBidi},
	{"a\u2069b", proto.PathBidi},
	{"a\u200eb", proto.PathBidi},
	{"a\u200fb", proto.PathBidi},
	{"a\u061cb", proto.PathBidi},
	{"a\u200bb", proto.PathInvisible},
	{"a\u00adb", proto.PathInvisible},
	{"\ufeffa", proto.PathInvisible},
	{"a\u2060b", proto.PathInvisible},
	{"a\u2064b", proto.PathInvisible},
	{"a\u206ab", proto.PathInvisible},
	{"a\u3164b", proto.PathInvisible},
	{"a\u180eb", proto.PathInvisible},
	{"a\u034fb", proto.PathInvisible},
	{"a\ufff9b", proto.PathInvisible},
	{"a\U000e0041b", proto.PathInvisible},
	{"CON", proto.PathDeviceName},
	{"con.txt", proto.PathDeviceName},
	{"a/NUL.tar.gz", proto.PathDeviceName},
	{"LPT1", proto.PathDeviceName},
	{"com1 .txt", proto.PathDeviceName},
}

// dupVectors are pairs of paths and whether one manifest may carry both:
// not if case-insensitive file systems would store them as one file, or
// one would be a folder of the other (proto.FoldPath).
var dupVectors = []struct {
	paths []string
	ok    bool
}{
	{[]string{"a.txt", "A.TXT"}, false},
	{[]string{"\u00c4.txt", "\u00e4.txt"}, false},
	{[]string{"\u0130.txt", "i.txt"}, false}, // İ folds to i (simple mapping)
	{[]string{"\u0130", "i/x"}, false},
	{[]string{"\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c3"}, false}, // ΟΔΟΣ: no final-sigma rule
	{[]string{"\u1e9e", "\u00df"}, false},                                     // capital sharp s
	{[]string{"\u212a", "k"}, false},                                          // Kelvin sign
	{[]string{"\u00df", "ss"}, true},                                          // no full case folding
	{[]string{"\u03c2", "\u03c3"}, true},                                      // final sigma stays itself
	{[]string{"a/b", "a/c"}, true},
	{[]string{"a", "a/b"}, false},
}

// asciiJSON escapes every non-ASCII character, so the vector file shows
// exactly which code points are in a name (and holds no bidi controls).
func asciiJSON(b []byte) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r < utf8.RuneSelf:
			out.WriteByte(b[0])
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
		b = b[n:]
	}
	return out.Bytes()
}

func TestPathVectors(t *testing.T) {
	type pathV struct {
		Path   string `json:"path"`
		Valid  bool   `json:"valid"`
		Reason string `json:"reason,omitempty"`
	}
	type dupV struct {
		Paths []string `json:"paths"`
		Valid bool     `json:"valid"`
	}
	var file struct {
		Note       string  `json:"note"`
		Paths      []pathV `json:"paths"`
		Duplicates []dupV  `json:"duplicates"`
	}
	file.Note = "Receiver name rules (PROTOCOL.md 4.1): reason is what Go's proto.PathProblem and the web's pathProblem return; duplicates: whether one manifest may hold all the paths (case folding)."
	for _, v := range pathVectors {
		got := proto.PathProblem(v.path)
		if got != v.reason {
			t.Errorf("PathProblem(%q) = %q, want %q", v.path, got, v.reason)
		}
		if err := transfer.CheckPath(v.path); (err == nil) != (v.reason == "") {
			t.Errorf("CheckPath(%q) = %v", v.path, err)
		}
		file.Paths = append(file.Paths, pathV{Path: v.path, Valid: v.reason == "", Reason: v.reason})
	}
	for _, v := range dupVectors {
		m := &proto.Manifest{Version: proto.Version, ChunkSize: 1 << 16}
		for _, p := range v.paths {
			m.Files = append(m.Files, proto.File{Path: p, Size: 1})
			m.TotalSize++
		}
		b, err := proto.MarshalControl(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = proto.ParseControl(b)
		if (err == nil) != v.ok {
			t.Errorf("manifest with %q: %v, want ok=%v", v.paths, err, v.ok)
		}
		file.Duplicates = append(file.Duplicates, dupV{Paths: v.paths, Valid: v.ok})
	}
	js, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	vectors.Check(t, "paths.json", json.RawMessage(asciiJSON(js)), *update)
}

// Names that would show as something else are refused, and "İ" and "i"
// count as the same name (both checks use only APIs older than the fix).
func TestCheckPathRefusesDisguisedNames(t *testing.T) {
	for _, p := range []string{"invoice\u202efdp.exe", "a\u0085b", "a\u009bb", "a\u2066b", "a\u200fb", "a\u200bb", "\ufeffa"} {
		if transfer.CheckPath(p) == nil {
			t.Errorf("%q accepted", p)
		}
	}
	m := &proto.Manifest{Version: proto.Version, ChunkSize: 1 << 16, TotalSize: 2,
		Files: []proto.File{{Path: "\u0130", Size: 1}, {Path: "i", Size: 1}}}
	b, _ := proto.MarshalControl(m)
	if _, err := proto.ParseControl(b); err == nil {
		t.Error(`a manifest with both "İ" and "i" was accepted`)
	}
}
