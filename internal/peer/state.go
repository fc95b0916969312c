package peer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// StateFile is the resume state's file name for a ticket.
func StateFile(ticketID string) string { return ".ferry-session-" + ticketID }

func loadState(dir, ticketID string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile(ticketID)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil || st.TicketID != ticketID || len(st.SessionID) != 22 || len(st.SessionSecret) != 32 {
		return nil, fmt.Errorf("the resume state %s is damaged; delete it to start over", StateFile(ticketID))
	}
	return &st, nil
}

func saveState(dir string, st *State) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	tmp := filepath.Join(dir, StateFile(st.TicketID)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile(st.TicketID)))
}

func removeState(dir, ticketID string) {
	_ = os.Remove(filepath.Join(dir, StateFile(ticketID)))
}
