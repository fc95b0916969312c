package termui

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferrydev/ferry/internal/proto"
)

// Name returns a file name or path as it is safe to print: unchanged when
// every character is an ordinary visible one, else in double quotes with
// each unusual character escaped (\u202e, \x1b, \xff for a byte that is not
// UTF-8), so that no name can move the cursor, recolour the terminal or
// show as another name ("invoice\u202efdp.exe" would look like
// "invoiceexe.pdf"). Received names are already refused for these
// characters; local names (what `ferry send` lists) are not.
func Name(s string) string {
	if !strings.ContainsFunc(s, unusual) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x80 && unusual(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unusual(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case unusual(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	b.WriteByte('"')
	return b.String()
}

// unusual is true for what a file name may not show raw: whatever the
// manifest rules refuse except the backslash (a Windows separator in a
// local path), and anything else that is not graphic (other format
// characters, unassigned code points, surrogates' replacement), except
// the joiners and spaces that legitimate names use.
func unusual(r rune) bool {
	if r == '\\' {
		return false
	}
	if proto.RuneProblem(r) != "" {
		return true
	}
	if r == 0x200c || r == 0x200d || r == ' ' {
		return false
	}
	return !unicode.IsGraphic(r) || r == utf8.RuneError
}
