package depot

import (
	"testing"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	for _, c := range []struct {
		h      string
		off, n int64
		ok     bool
	}{
		{"", 0, size, true},
		{"bytes=0-", 0, size, true},
		{"bytes=10-", 10, 990, true},
		{"bytes=10-19", 10, 10, true},
		{"bytes=990-5000", 990, 10, true},
		{"bytes=999-999", 999, 1, true},
		{"bytes=1000-", 0, 0, false},
		{"bytes=-5", 0, 0, false},
		{"bytes=5-4", 0, 0, false},
		{"bytes=0-1,5-6", 0, 0, false},
		{"items=0-", 0, 0, false},
		{"bytes=x-", 0, 0, false},
		{"bytes=+1-", 0, 0, false},
	} {
		off, n, ok := parseRange(c.h, size)
		if ok != c.ok || (ok && (off != c.off || n != c.n)) {
			t.Errorf("parseRange(%q) = %d, %d, %v; want %d, %d, %v", c.h, off, n, ok, c.off, c.n, c.ok)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-", "bytes=10-19", "bytes=-5", "bytes=9223372036854775807-"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size <= 0 {
			return
		}
		off, n, ok := parseRange(h, size)
		if ok && (off < 0 || n <= 0 || off+n > size) {
			t.Fatalf("parseRange(%q, %d) = [%d, +%d)", h, size, off, n)
		}
	})
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{"AAECAwQFBgcI": true, "a-_9": true, "": false, "../x": false, "a b": false, "é": false} {
		if validID(id) != want {
			t.Errorf("validID(%q) = %v", id, !want)
		}
	}
}
