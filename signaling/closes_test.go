package signaling_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/vectors"
	"github.com/ferrydev/ferry/signaling"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors")

// protocolCloseCodes are the codes of the table in PROTOCOL.md §2.6.
func protocolCloseCodes(t *testing.T) []int {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(vectors.Dir(), "..", "..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	for _, m := range regexp.MustCompile(`(?m)^\| (4\d\d\d) \|`).FindAllSubmatch(doc, -1) {
		c, _ := strconv.Atoi(string(m[1]))
		codes = append(codes, c)
	}
	if len(codes) == 0 {
		t.Fatal("no close codes found in PROTOCOL.md §2.6")
	}
	return codes
}

// TestCloseVectors writes closes.json: every close the server sends, with
// its code and reason, which the clients map to what a person is told
// (the web's closeMessage, Go's sigclient). Every code of PROTOCOL.md
// §2.6 is there, and the 4009 reasons are the two clients tell apart.
func TestCloseVectors(t *testing.T) {
	type closeV struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	}
	file := struct {
		Note   string   `json:"note"`
		Closes []closeV `json:"closes"`
	}{Note: "Every close the signaling server sends (PROTOCOL.md 2.6): code and reason, from signaling's error table. Each code of PROTOCOL.md is here; clients must recognise each (the web's closeMessage, Go's sigclient), and tell the 4009 reasons apart."}
	errs, codes, reasons := signaling.CloseTable()
	seen := map[int]bool{}
	for i, err := range errs {
		code, reason := signaling.CloseFor(err)
		if int(code) != int(codes[i]) || reason != reasons[i] {
			t.Errorf("closeFor(%v) = %d %q, want %d %q", err, code, reason, codes[i], reasons[i])
		}
		if len(reason) > 123 {
			t.Errorf("reason %q is longer than a close frame holds", reason)
		}
		file.Closes = append(file.Closes, closeV{Code: int(code), Reason: reason})
		seen[int(code)] = true
	}
	for _, c := range protocolCloseCodes(t) {
		if !seen[c] {
			t.Errorf("PROTOCOL.md §2.6 lists %d, which the server never sends", c)
		}
		delete(seen, c)
	}
	for c := range seen {
		t.Errorf("the server sends %d, which PROTOCOL.md §2.6 does not list", c)
	}
	for _, r := range []string{proto.ForbiddenSignIn, proto.ForbiddenNetwork} {
		if !slices.Contains(file.Closes, closeV{Code: proto.CloseForbidden, Reason: r}) {
			t.Errorf("the server never closes with 4009 %q", r)
		}
	}
	vectors.Check(t, "closes.json", file, *update)
}
