package diskblob

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/depot/depottest"
	"github.com/ferrydev/ferry/internal/testenv"
)

func open(t *testing.T, dir string) *Blobs {
	t.Helper()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBlobs(t *testing.T) {
	depottest.TestBlobs(t, func(t *testing.T) depot.Blobs {
		return open(t, filepath.Join(t.TempDir(), "data"))
	})
}

// Refused ids leave nothing beside or inside the folder.
func TestBadIDsStayInside(t *testing.T) {
	parent := t.TempDir()
	b := open(t, filepath.Join(parent, "data"))
	for _, id := range depottest.BadIDs {
		_, _ = b.Begin(t.Context(), id)
		_ = b.PutManifest(t.Context(), id, []byte("m"))
		_ = b.Delete(t.Context(), id)
	}
	for _, dir := range []string{parent, filepath.Join(parent, "data")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if want := map[string][]string{parent: {"data"}}[dir]; !slices.Equal(names, want) {
			t.Errorf("%s holds %q, want %q", dir, names, want)
		}
	}
}

// A symlink planted in the folder does not lead out of it.
func TestSymlinkDoesNotEscape(t *testing.T) {
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "data")
	b := open(t, dir)
	if err := os.Symlink(outside, filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := b.PutManifest(t.Context(), "evil", []byte("m")); err == nil {
		t.Error("PutManifest through a symlink out of the folder succeeded")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a write went out of the folder: %d entries in %s", len(ents), outside)
	}
}

// A full disk gives ErrFull; once space is freed, the same part goes in.
func TestDiskFull(t *testing.T) {
	dir := testenv.Tmpfs(t, "12m")
	b := open(t, dir)
	ctx := t.Context()
	// Fill most of the disk with another file.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 6<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := b.Begin(ctx, "full")
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte{7}, depot.PartSize)
	err = b.WritePart(ctx, "full", up, 0, bytes.NewReader(part), depot.PartSize)
	if !errors.Is(err, depot.ErrFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WritePart on a full disk: %v, want ErrFull (ENOSPC)", err)
	}
	// The failed part holds no space.
	st, err := os.Stat(filepath.Join(dir, "full", up+uploadSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 0 {
		t.Errorf("after a failed part the upload file has %d bytes, want 0", st.Size())
	}
	err = b.PutManifest(ctx, "full", make([]byte, 8<<20))
	if !errors.Is(err, depot.ErrFull) {
		t.Errorf("PutManifest on a full disk: %v, want ErrFull", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := b.WritePart(ctx, "full", up, 0, bytes.NewReader(part), depot.PartSize); err != nil {
		t.Fatalf("WritePart after freeing space: %v", err)
	}
	if err := b.Complete(ctx, "full", up, 1); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Read(ctx, "full", depot.PartSize-1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var one [1]byte
	if _, err := rc.Read(one[:]); err != nil || one[0] != 7 {
		t.Errorf("last byte after the part went in: %v %v", one, err)
	}
	// Nothing but the transfer's folder is left (no temporary manifest).
	ents, _ := os.ReadDir(filepath.Join(dir, "full"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"data"}) {
		t.Errorf("transfer folder holds %q, want [data]", names)
	}
}
