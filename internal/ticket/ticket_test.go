package ticket_test

import (
	"errors"
	"flag"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/vectors"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors")

const goodID = "AAECAwQFBgcI"               // bytes 0..8
const goodSecret = "AAECAwQFBgcICQoLDA0ODw" // bytes 0..15

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"ok", goodID + "." + goodSecret, nil},
		{"ok with spaces", "  " + goodID + "." + goodSecret + "\n", nil},
		{"no dot", goodID + goodSecret, ticket.ErrMalformed},
		{"short id", "AAECAwQFBgc." + goodSecret, ticket.ErrBadID},
		{"bad id char", "AAECAwQFBg*I." + goodSecret, ticket.ErrBadID},
		{"truncated secret", goodID + "." + goodSecret[:21], ticket.ErrBadSecret},
		{"long secret", goodID + "." + goodSecret + "A", ticket.ErrBadSecret},
		{"non-canonical secret", goodID + ".AAECAwQFBgcICQoLDA0ODx", ticket.ErrBadSecret},
		{"padding", goodID + "." + goodSecret + "==", ticket.ErrBadSecret},
		{"empty", "", ticket.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := ticket.Parse(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if err == nil && tk.String() != strings.TrimSpace(tc.in) {
				t.Fatalf("round trip: %q != %q", tk.String(), tc.in)
			}
		})
	}
}

func TestNewAndLink(t *testing.T) {
	id := ticket.NewID()
	if err := ticket.ValidateID(id); err != nil {
		t.Fatal(err)
	}
	tk, err := ticket.New(id)
	if err != nil {
		t.Fatal(err)
	}
	tk2, _ := ticket.New(id)
	if tk.Secret == tk2.Secret {
		t.Fatal("two tickets share a secret")
	}
	base, _ := url.Parse("https://files.example.org/ferry/")
	link := tk.Link(base)
	if !strings.HasPrefix(link, "https://files.example.org/ferry/r#") {
		t.Fatalf("link %q", link)
	}
	gotBase, got, err := ticket.ParseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	if got != tk || gotBase.String() != "https://files.example.org/ferry" {
		t.Fatalf("ParseLink = %v %v", gotBase, got)
	}
}

func TestParseLinkErrors(t *testing.T) {
	tests := []struct {
		in  string
		err error
	}{
		{"ftp://x/r#" + goodID + "." + goodSecret, ticket.ErrBadLink},
		{"http:///r#" + goodID + "." + goodSecret, ticket.ErrBadLink},
		{"http://x/s#" + goodID + "." + goodSecret, ticket.ErrBadLink},
		{"http://x/r", ticket.ErrBadLink},
		{"http://x/r#" + goodID + "." + goodSecret[:10], ticket.ErrBadSecret},
		{"not a url at all", ticket.ErrBadLink},
	}
	for _, tc := range tests {
		if _, _, err := ticket.ParseLink(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("ParseLink(%q) = %v, want %v", tc.in, err, tc.err)
		}
	}
}

type linkVector struct {
	Link   string `json:"link"`
	Base   string `json:"base,omitempty"`
	ID     string `json:"id,omitempty"`
	Secret string `json:"secretHex,omitempty"`
	Error  string `json:"error,omitempty"`
}

// TestVectors pins link parsing for the TypeScript client.
func TestVectors(t *testing.T) {
	inputs := []string{
		"http://localhost:8080/r#" + goodID + "." + goodSecret,
		"https://ferry.example/sub/r#" + goodID + "." + goodSecret,
		" https://ferry.example/r#" + goodID + "." + goodSecret + " ",
		"https://ferry.example/r#" + goodID + "." + goodSecret[:21],
		"https://ferry.example/r#" + goodID,
		"https://ferry.example/r",
		"https://ferry.example/x#" + goodID + "." + goodSecret,
		"https://ferry.example/r#AAECAwQF*gcI." + goodSecret,
		"mailto:x@y/r#" + goodID + "." + goodSecret,
	}
	var out []linkVector
	for _, in := range inputs {
		v := linkVector{Link: in}
		base, tk, err := ticket.ParseLink(in)
		switch {
		case errors.Is(err, ticket.ErrBadSecret):
			v.Error = "secret"
		case errors.Is(err, ticket.ErrBadID):
			v.Error = "id"
		case err != nil:
			v.Error = "link"
		default:
			v.Base, v.ID = base.String(), tk.ID
			v.Secret = hexs(tk.Secret[:])
		}
		out = append(out, v)
	}
	vectors.Check(t, "links.json", out, *update)
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, d[c>>4], d[c&15])
	}
	return string(s)
}

func FuzzParseLink(f *testing.F) {
	f.Add("http://localhost:8080/r#" + goodID + "." + goodSecret)
	f.Add(goodID + "." + goodSecret)
	f.Add("https://a/r#..")
	f.Fuzz(func(t *testing.T, s string) {
		if _, tk, err := ticket.ParseLink(s); err == nil {
			if tk2, err := ticket.Parse(tk.String()); err != nil || tk2 != tk {
				t.Fatalf("parsed link ticket does not round-trip: %v", err)
			}
		}
		if tk, err := ticket.Parse(s); err == nil {
			if tk.String() != strings.TrimSpace(s) {
				t.Fatalf("non-canonical ticket accepted: %q", s)
			}
		}
	})
}
