package transfer

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Files are kept open only a few at a time; one closed since is opened
// again when read, and must still be the file the transfer started from.
func TestSourcesOpenFew(t *testing.T) {
	dir := t.TempDir()
	var files []*sfile
	for i := range 3 * maxOpenSources {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		src := SourceFile{Path: fmt.Sprint(i), Local: p, Size: int64(len(p))}
		fi, err := statSource(src)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, &sfile{src: src, seen: fi})
	}
	var s sources
	defer s.closeAll()
	read := func(f *sfile) string {
		t.Helper()
		fh, err := s.acquire(f)
		if err != nil {
			t.Fatal(err)
		}
		defer s.release(f)
		b := make([]byte, f.src.Size)
		if _, err := fh.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, f := range files {
		read(f)
		if len(s.open) > maxOpenSources {
			t.Fatalf("%d files open", len(s.open))
		}
	}
	if files[0].fh != nil {
		t.Fatal("the least recently used file is still open")
	}
	if got := read(files[0]); got != files[0].src.Local {
		t.Fatalf("reopened file reads %q", got)
	}
	// A file held by a reader is never the one closed.
	held := files[1]
	if _, err := s.acquire(held); err != nil {
		t.Fatal(err)
	}
	for _, f := range files[2:] {
		read(f)
	}
	if held.fh == nil {
		t.Fatal("a file being read was closed")
	}
	s.release(held)
}
