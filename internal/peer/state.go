package peer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// State is what a receiver keeps in its target folder so that running
// `ferry receive` again continues an interrupted transfer. It holds the
// session secret (never the ticket secret, which is spent): anyone who can
// read it could resume the session, like anyone who can read the partial
// files can read the data. It is written 0600 and removed when done.
type State struct {
	Server        string `json:"server"`
	TicketID      string `json:"ticketId"`
	SessionID     string `json:"sessionId"`
	SessionSecret []byte `json:"sessionSecret"`
}

// maxStateSize bounds what loadState reads: a real state is about 200
// bytes, and the file sits in a folder others may have prepared.
const maxStateSize = 4 << 10

// ErrStateFile reports a resume state file that is not a small regular file
// (a symbolic link, a device, something huge): it is never read or replaced.
var ErrStateFile = errors.New("peer: the resume state is not a small regular file")

// StateFile is the resume state's file name for a ticket.
func StateFile(ticketID string) string { return ".ferry-session-" + ticketID }

// The state is read and written only through an os.Root of the target
// folder, like the received files, and never through a symbolic link: a
// link placed there beforehand must not make us read /dev/zero or overwrite
// a file elsewhere with the session secret.

func loadState(dir, ticketID string) (*State, error) {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	name := StateFile(ticketID)
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxStateSize {
		return nil, fmt.Errorf("%w: %s in %s; delete it to start over", ErrStateFile, name, dir)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Lstat and Open are two steps: check that we opened what we looked at.
	if ofi, err := f.Stat(); err != nil || !os.SameFile(fi, ofi) {
		return nil, fmt.Errorf("%w: %s in %s changed while it was opened", ErrStateFile, name, dir)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, err
	}
	var st State
	if len(b) > maxStateSize || json.Unmarshal(b, &st) != nil || st.TicketID != ticketID || len(st.SessionID) != 22 || len(st.SessionSecret) != 32 {
		return nil, fmt.Errorf("the resume state %s is damaged; delete it to start over", name)
	}
	return &st, nil
}

func saveState(dir string, st *State) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	name := StateFile(st.TicketID)
	if fi, err := root.Lstat(name); err == nil && !fi.Mode().IsRegular() {
		// Renaming over it would replace only the link, but say what is
		// wrong rather than quietly removing someone's file.
		return fmt.Errorf("%w: %s in %s; delete it to start over", ErrStateFile, name, dir)
	}
	b, _ := json.Marshal(st)
	tmp := name + ".tmp"
	// A leftover from a crash, or whatever else sits there: removing a
	// symbolic link removes the link, not its target.
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// O_EXCL: a new file (so 0600 applies), never one reached through a link.
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
	}
	return err
}

func removeState(dir, ticketID string) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return
	}
	defer root.Close()
	_ = root.Remove(StateFile(ticketID))
}
