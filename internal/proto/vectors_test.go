package proto_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/vectors"
)

// A message vector: a CONTROL message as JSON text and the verdict both
// clients reach; Reason is the Bad* reason of a refusal.
type msgVector struct {
	Name   string `json:"name"`
	JSON   string `json:"json"`
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// manifestCases: each invalid one breaks exactly one rule, so that the
// reason does not depend on the order of the checks.
var manifestCases = []struct{ name, json, reason string }{
	{"two files", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":3,"files":[{"path":"a.txt","size":1},{"path":"d/b.txt","size":2,"mtime":1767225600000}]}`, ""},
	{"agent", `{"t":"manifest","version":1,"agent":"ferry-web/0.1.0","chunkSize":65472,"totalSize":1,"files":[{"path":"a","size":1}]}`, ""},
	{"unknown fields are ignored", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"x":[1],"files":[{"path":"a","size":1,"y":{}}]}`, ""},
	{"null counts as absent: agent", `{"t":"manifest","version":1,"agent":null,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1}]}`, ""},
	{"null counts as absent: mtime", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1,"mtime":null}]}`, ""},
	{"mtime before 1970", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1,"mtime":-86400000}]}`, ""},
	{"empty files", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":[{"path":"a","size":0},{"path":"b","size":0}]}`, ""},
	{"smallest chunk size", `{"t":"manifest","version":1,"chunkSize":1024,"totalSize":1,"files":[{"path":"a","size":1}]}`, ""},
	{"largest chunk size", `{"t":"manifest","version":1,"chunkSize":16777216,"totalSize":1,"files":[{"path":"a","size":1}]}`, ""},
	{"largest size", `{"t":"manifest","version":1,"chunkSize":16777216,"totalSize":9007199254740991,"files":[{"path":"a","size":9007199254740991}]}`, ""},
	{"most chunks", `{"t":"manifest","version":1,"chunkSize":1024,"totalSize":4398046510079,"files":[{"path":"a","size":4398046510079}]}`, ""},
	{"folders", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"a/b","size":1},{"path":"a/c/d","size":1}]}`, ""},
	{"no full case folding: ß and ss", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"\u00df","size":1},{"path":"ss","size":1}]}`, ""},
	{"no final-sigma rule: ς and σ", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"\u03c2","size":1},{"path":"\u03c3","size":1}]}`, ""},
	{"Go's Unicode tables, not the browser's: U+A7CB and U+0264", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"\ua7cb","size":1},{"path":"\u0264","size":1}]}`, ""},

	{"version 2", `{"t":"manifest","version":2,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadVersion},
	{"no version", `{"t":"manifest","chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadVersion},
	{"version as a string", `{"t":"manifest","version":"1","chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadVersion},
	{"chunk size too small", `{"t":"manifest","version":1,"chunkSize":1023,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadChunkSize},
	{"chunk size too large", `{"t":"manifest","version":1,"chunkSize":16777217,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadChunkSize},
	{"no chunk size", `{"t":"manifest","version":1,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadChunkSize},
	{"fractional chunk size", `{"t":"manifest","version":1,"chunkSize":65536.5,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadChunkSize},
	{"no files", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":[]}`, proto.BadFileCount},
	{"files absent", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0}`, proto.BadFileCount},
	{"files null", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":null}`, proto.BadFileCount},
	{"files not a list", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":{"path":"a","size":0}}`, proto.BadMalformed},
	{"file not an object", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":[1]}`, proto.BadMalformed},
	{"file null", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":[null]}`, proto.BadPathPrefix + proto.PathEmpty},
	{"path absent", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"size":1}]}`, proto.BadPathPrefix + proto.PathEmpty},
	{"path null", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":null,"size":1}]}`, proto.BadPathPrefix + proto.PathEmpty},
	{"path a number", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":1,"size":1}]}`, proto.BadMalformed},
	{"path with ..", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a/../b","size":1}]}`, proto.BadPathPrefix + proto.PathDotElement},
	{"bidi control in a path", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"invoice\u202efdp.exe","size":1}]}`, proto.BadPathPrefix + proto.PathBidi},
	{"device name", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"CON","size":1}]}`, proto.BadPathPrefix + proto.PathDeviceName},
	{"device name in a folder, any case, extension", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a/nul.tar.gz","size":1}]}`, proto.BadPathPrefix + proto.PathDeviceName},
	{"device name with dotless i", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"con\u0131n$.txt","size":1}]}`, proto.BadPathPrefix + proto.PathDeviceName},
	{"device name as a folder", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"lpt1 /a","size":1}]}`, proto.BadPathPrefix + proto.PathDeviceName},
	{"size absent", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":[{"path":"a"}]}`, proto.BadSize},
	{"size null", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":0,"files":[{"path":"a","size":null}]}`, proto.BadSize},
	{"negative size", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":-1,"files":[{"path":"a","size":-1}]}`, proto.BadSize},
	{"fractional size", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1.5,"files":[{"path":"a","size":1.5}]}`, proto.BadSize},
	{"size as a string", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":"1"}]}`, proto.BadSize},
	{"size beyond 2^53-1", `{"t":"manifest","version":1,"chunkSize":16777216,"totalSize":9007199254740992,"files":[{"path":"a","size":9007199254740992}]}`, proto.BadSize},
	{"2^32-1 chunks", `{"t":"manifest","version":1,"chunkSize":1024,"totalSize":4398046510080,"files":[{"path":"a","size":4398046510080}]}`, proto.BadSize},
	{"mtime as a string", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1,"mtime":"yesterday"}]}`, proto.BadMtime},
	{"fractional mtime", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1,"mtime":1.5}]}`, proto.BadMtime},
	{"mtime beyond 2^53-1", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1,"mtime":9007199254740992}]}`, proto.BadMtime},
	{"same path twice", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"a","size":1},{"path":"a","size":1}]}`, proto.BadDuplicate},
	{"same path but for case", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"a.txt","size":1},{"path":"A.TXT","size":1}]}`, proto.BadDuplicate},
	{"İ folds to i", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"\u0130.txt","size":1},{"path":"i.txt","size":1}]}`, proto.BadDuplicate},
	{"Kelvin sign folds to k", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"\u212a","size":1},{"path":"k","size":1}]}`, proto.BadDuplicate},
	{"Σ folds to σ at the end too", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"\u039f\u0394\u039f\u03a3","size":1},{"path":"\u03bf\u03b4\u03bf\u03c3","size":1}]}`, proto.BadDuplicate},
	{"a file and a folder", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"a","size":1},{"path":"a/b","size":1}]}`, proto.BadFileAndFolder},
	{"a file and a folder but for case", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":2,"files":[{"path":"a/b/\u0130","size":1},{"path":"A/B/i/c","size":1}]}`, proto.BadFileAndFolder},
	{"wrong total size", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":4,"files":[{"path":"a","size":1},{"path":"b","size":2}]}`, proto.BadTotalSize},
	{"total size absent", `{"t":"manifest","version":1,"chunkSize":65536,"files":[{"path":"a","size":0}]}`, proto.BadTotalSize},
	{"total size null", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":null,"files":[{"path":"a","size":0}]}`, proto.BadTotalSize},
	{"total size as a string", `{"t":"manifest","version":1,"chunkSize":65536,"totalSize":"1","files":[{"path":"a","size":1}]}`, proto.BadTotalSize},
	{"total size beyond 2^53-1", `{"t":"manifest","version":1,"chunkSize":16777216,"totalSize":9007199254740992,"files":[{"path":"a","size":9007199254740991},{"path":"b","size":1}]}`, proto.BadTotalSize},
	{"agent not a string", `{"t":"manifest","version":1,"agent":1,"chunkSize":65536,"totalSize":1,"files":[{"path":"a","size":1}]}`, proto.BadAgent},
}

// acceptManifest is what every accept vector answers: file 0 has three
// chunks, file 1 none.
const acceptManifest = `{"t":"manifest","version":1,"chunkSize":1024,"totalSize":3000,"files":[{"path":"a","size":3000},{"path":"b","size":0}]}`

var acceptCases = []struct{ name, json, reason string }{
	{"window only", `{"t":"accept","window":64}`, ""},
	{"smallest window", `{"t":"accept","window":1}`, ""},
	{"largest window", `{"t":"accept","window":65536}`, ""},
	{"empty resume list", `{"t":"accept","window":64,"resume":[]}`, ""},
	{"null counts as absent: resume", `{"t":"accept","window":64,"resume":null}`, ""},
	{"whole file", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,3]]}]}`, ""},
	{"no ranges", `{"t":"accept","window":64,"resume":[{"file":0,"have":[]}]}`, ""},
	{"two ranges", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,1],[2,3]]}]}`, ""},
	{"overlapping ranges", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,2],[1,3]]}]}`, ""},
	{"a file twice", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,1]]},{"file":0,"have":[[1,2]]}]}`, ""},
	{"unknown fields are ignored", `{"t":"accept","window":64,"x":1,"resume":[{"file":0,"have":[[0,1]],"y":2}]}`, ""},

	{"window 0", `{"t":"accept","window":0}`, proto.BadWindow},
	{"window too large", `{"t":"accept","window":65537}`, proto.BadWindow},
	{"window absent", `{"t":"accept"}`, proto.BadWindow},
	{"window null", `{"t":"accept","window":null}`, proto.BadWindow},
	{"negative window", `{"t":"accept","window":-1}`, proto.BadWindow},
	{"fractional window", `{"t":"accept","window":1.5}`, proto.BadWindow},
	{"window as a string", `{"t":"accept","window":"64"}`, proto.BadWindow},
	{"resume not a list", `{"t":"accept","window":64,"resume":{"file":0,"have":[[0,1]]}}`, proto.BadResume},
	{"resume entry not an object", `{"t":"accept","window":64,"resume":[0]}`, proto.BadResume},
	{"resume entry null", `{"t":"accept","window":64,"resume":[null]}`, proto.BadResume},
	{"file absent", `{"t":"accept","window":64,"resume":[{"have":[[0,1]]}]}`, proto.BadResume},
	{"file null", `{"t":"accept","window":64,"resume":[{"file":null,"have":[[0,1]]}]}`, proto.BadResume},
	{"negative file", `{"t":"accept","window":64,"resume":[{"file":-1,"have":[[0,1]]}]}`, proto.BadResume},
	{"no such file", `{"t":"accept","window":64,"resume":[{"file":2,"have":[[0,1]]}]}`, proto.BadResume},
	{"file as a string", `{"t":"accept","window":64,"resume":[{"file":"0","have":[[0,1]]}]}`, proto.BadResume},
	{"have absent", `{"t":"accept","window":64,"resume":[{"file":0}]}`, proto.BadResume},
	{"have null", `{"t":"accept","window":64,"resume":[{"file":0,"have":null}]}`, proto.BadResume},
	{"range of one index", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0]]}]}`, proto.BadResume},
	{"range of three indices", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,1,2]]}]}`, proto.BadResume},
	{"empty range", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[1,1]]}]}`, proto.BadResume},
	{"inverted range", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[2,1]]}]}`, proto.BadResume},
	{"range beyond the file", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,4]]}]}`, proto.BadResume},
	{"range in an empty file", `{"t":"accept","window":64,"resume":[{"file":1,"have":[[0,1]]}]}`, proto.BadResume},
	{"negative index", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[-1,1]]}]}`, proto.BadResume},
	{"index beyond u32", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,4294967296]]}]}`, proto.BadResume},
	{"fractional index", `{"t":"accept","window":64,"resume":[{"file":0,"have":[[0,1.5]]}]}`, proto.BadResume},
}

// verdict parses a CONTROL message as a receiver (manifest) or a sender
// (accept, against man) would, and returns the reason it is refused, or "".
func verdict(t *testing.T, js string, man *proto.Manifest) string {
	t.Helper()
	m, err := proto.ParseControl(append([]byte{proto.FrameControl}, js...))
	if err == nil {
		if a, ok := m.(*proto.Accept); ok {
			err = proto.CheckAccept(a, man)
		}
	}
	if err == nil {
		return ""
	}
	var inv *proto.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("%s: %v is not an InvalidError", js, err)
	}
	if !errors.Is(err, proto.ErrControl) {
		t.Errorf("%v does not wrap ErrControl", err)
	}
	return inv.Reason
}

func checkCases(t *testing.T, cases []struct{ name, json, reason string }, man *proto.Manifest) []msgVector {
	var out []msgVector
	for _, c := range cases {
		if !json.Valid([]byte(c.json)) {
			t.Fatalf("%s: not JSON: %s", c.name, c.json)
		}
		if got := verdict(t, c.json, man); got != c.reason {
			t.Errorf("%s: reason %q, want %q\n%s", c.name, got, c.reason, c.json)
		}
		out = append(out, msgVector{Name: c.name, JSON: c.json, Valid: c.reason == "", Reason: c.reason})
	}
	return out
}

func TestManifestVectors(t *testing.T) {
	file := struct {
		Note      string      `json:"note"`
		Manifests []msgVector `json:"manifests"`
	}{
		Note:      "Manifest validity (PROTOCOL.md 4.1): json is the CONTROL message; reason is what Go's proto.ParseControl (InvalidError.Reason) and the web's checkManifest (ManifestError.reason) give. Each invalid one breaks one rule.",
		Manifests: checkCases(t, manifestCases, nil),
	}
	vectors.Check(t, "manifests.json", file, *update)
}

func TestAcceptVectors(t *testing.T) {
	m, err := proto.ParseControl(append([]byte{proto.FrameControl}, acceptManifest...))
	if err != nil {
		t.Fatal(err)
	}
	file := struct {
		Note     string          `json:"note"`
		Manifest json.RawMessage `json:"manifest"`
		Accepts  []msgVector     `json:"accepts"`
	}{
		Note:     "Accept validity (PROTOCOL.md 4.2), each answering manifest: reason is what Go's proto.ParseControl and proto.CheckAccept (InvalidError.Reason) and the web's checkAccept (ManifestError.reason) give.",
		Manifest: json.RawMessage(acceptManifest),
		Accepts:  checkCases(t, acceptCases, m.(*proto.Manifest)),
	}
	vectors.Check(t, "accepts.json", file, *update)
}

// TestFoldVectors pins the case folding of duplicate paths (PROTOCOL.md
// §4.1): every code point whose simple lowercase mapping is not itself,
// in the Unicode version of Go's tables. The web client's foldPath must
// map exactly these, and nothing else.
func TestFoldVectors(t *testing.T) {
	var pairs []string
	for r := rune(0); r <= unicode.MaxRune; r++ {
		l := []rune(proto.FoldPath(string(r)))
		if r >= 0xd800 && r <= 0xdfff {
			continue // not in UTF-8 strings
		}
		if len(l) != 1 {
			t.Fatalf("FoldPath(%U) = %q: not one code point", r, string(l))
		}
		if l[0] != r {
			pairs = append(pairs, fmt.Sprintf("%x:%x", r, l[0]))
		}
	}
	if got := proto.FoldPath("\u0130STANBUL \u039f\u0394\u039f\u03a3"); got != "istanbul \u03bf\u03b4\u03bf\u03c3" {
		t.Errorf("FoldPath: %q", got)
	}
	file := struct {
		Note           string   `json:"note"`
		UnicodeVersion string   `json:"unicodeVersion"`
		Lower          []string `json:"lower"`
	}{
		Note:           "Case folding of paths (PROTOCOL.md 4.1): every code point that folds to another, as hex \"code point:folded\"; all others fold to themselves. Go's proto.FoldPath (strings.ToLower) and the web's foldPath.",
		UnicodeVersion: unicode.Version,
		Lower:          pairs,
	}
	if !strings.HasPrefix(unicode.Version, "15.") {
		t.Logf("Go's Unicode tables are now %s: PROTOCOL.md §4.1 names the version", unicode.Version)
	}
	vectors.Check(t, "fold.json", file, *update)
}
