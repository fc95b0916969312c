package peer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func testState() *State {
	return &State{Server: "https://ferry.example", TicketID: "AAAAAAAAAAAA", SessionID: "BBBBBBBBBBBBBBBBBBBBBB", SessionSecret: bytes.Repeat([]byte{7}, 32)}
}

// A symbolic link placed at the temporary name beforehand must not make
// the receiver write the session secret through it.
func TestSaveStateThroughPlantedSymlink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "victim")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := testState()
	if err := os.Symlink(target, filepath.Join(dir, StateFile(st.TicketID)+".tmp")); err != nil {
		t.Fatal(err)
	}
	if err := saveState(dir, st); err != nil {
		t.Fatalf("saveState: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Fatalf("the file outside --out was overwritten: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(dir, StateFile(st.TicketID)))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want a regular file with 0600", fi.Mode())
	}
	got, err := loadState(dir, st.TicketID)
	if err != nil || got == nil || got.SessionID != st.SessionID {
		t.Fatalf("loadState = %+v, %v", got, err)
	}
}

// A symbolic link at the state's own name is refused with a clear error,
// and what it points to stays as it was.
func TestSaveStateOverSymlinkRefused(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "victim")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := testState()
	if err := os.Symlink(target, filepath.Join(dir, StateFile(st.TicketID))); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(dir, st.TicketID); !errors.Is(err, ErrStateFile) {
		t.Fatalf("loadState through a link: %v, want ErrStateFile", err)
	}
	if err := saveState(dir, st); !errors.Is(err, ErrStateFile) {
		t.Fatalf("saveState over a link: %v, want ErrStateFile", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Fatalf("the file outside --out was overwritten: %q", b)
	}
}

// An existing state file written with looser permissions is replaced by a
// new 0600 file, not rewritten in place.
func TestSaveStatePermissions(t *testing.T) {
	dir := t.TempDir()
	st := testState()
	for _, name := range []string{StateFile(st.TicketID), StateFile(st.TicketID) + ".tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, StateFile(st.TicketID)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", fi.Mode().Perm())
	}
}

// Loading never follows a link to an endless file or reads a huge one whole.
func TestLoadStateBounded(t *testing.T) {
	st := testState()
	t.Run("dev-zero", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Symlink("/dev/zero", filepath.Join(dir, StateFile(st.TicketID))); err != nil {
			t.Fatal(err)
		}
		if _, err := loadState(dir, st.TicketID); !errors.Is(err, ErrStateFile) {
			t.Fatalf("loadState: %v, want ErrStateFile", err)
		}
	})
	t.Run("huge", func(t *testing.T) {
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, StateFile(st.TicketID)))
		if err != nil {
			t.Fatal(err)
		}
		// Sparse: 64 GiB that takes no space.
		if err := f.Truncate(64 << 30); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := loadState(dir, st.TicketID); !errors.Is(err, ErrStateFile) {
			t.Fatalf("loadState: %v, want ErrStateFile", err)
		}
	})
}
