package auth

import (
	"strings"
	"testing"
)

func TestSafeNext(t *testing.T) {
	tests := []struct{ name, next, want string }{
		{"empty", "", "/"},
		{"root", "/", "/"},
		{"path", "/admin", "/admin"},
		{"query and fragment", "/r?x=1#frag", "/r?x=1#frag"},
		{"unicode path", "/été", "/été"},
		{"dot segment", "/./admin", "/./admin"},
		{"protocol relative", "//evil.example/", "/"},
		{"triple slash", "///evil.example/", "/"},
		{"slash backslash", `/\evil.example/`, "/"},
		{"backslashes", `\\evil.example/`, "/"},
		{"backslash later", `/admin\x`, "/"},
		{"tab between slashes", "/\t/evil.example/", "/"},
		{"newline between slashes", "/\n/evil.example/", "/"},
		{"carriage return", "/\r/evil.example/", "/"},
		{"nul", "/admin\x00", "/"},
		{"del", "/admin\x7f", "/"},
		{"leading space", " /admin", "/"},
		{"inner space", "/ /evil.example", "/"},
		{"encoded backslash", "/%5Cevil.example/", "/"},
		{"encoded backslash lower case", "/%5cevil.example/", "/"},
		{"encoded slash", "/%2Fevil.example/", "/"},
		{"encoded tab", "/%09/evil.example/", "/"},
		{"encoded newline", "/%0a/evil.example/", "/"},
		{"bad escape", "/%zz", "/"},
		{"absolute https", "https://evil.example/", "/"},
		{"absolute http", "http://evil.example", "/"},
		{"scheme with one slash", "https:/evil.example", "/"},
		{"javascript", "javascript:alert(1)", "/"},
		{"data", "data:text/html,hi", "/"},
		{"relative", "evil.example", "/"},
		{"user info", "//user@evil.example", "/"},
		{"too long", "/" + strings.Repeat("a", maxNext), "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := safeNext(tc.next); got != tc.want {
				t.Fatalf("safeNext(%q) = %q, want %q", tc.next, got, tc.want)
			}
		})
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/admin", `/\x`, "//x", "/%5Cx", "/\t/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !sitePath(got) {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
	})
}

func TestTokenEqual(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		eq        int
	}{
		{"correct-horse-battery-staple", "correct-horse-battery-staple", 1},
		{"correct-horse-battery-stapl", "correct-horse-battery-staple", 0},
		{"", "correct-horse-battery-staple", 0},
		{"correct-horse-battery-staple-and-more", "correct-horse-battery-staple", 0},
		{"Correct-horse-battery-staple", "correct-horse-battery-staple", 0},
	} {
		if got := tokenEqual(tc.got, tc.want); got != tc.eq {
			t.Errorf("tokenEqual(%q, %q) = %d", tc.got, tc.want, got)
		}
	}
	a := &Auth{cfg: Config{AdminToken: ""}}
	if a.AdminTokenOK("") {
		t.Fatal("an empty admin token opens the admin page")
	}
}
