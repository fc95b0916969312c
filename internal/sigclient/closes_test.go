package sigclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/coder/websocket"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/vectors"
)

// Every close the server sends (testdata/vectors/closes.json) becomes an
// error of its own, not the generic ErrClosed, and the two reasons of a
// 4009 close are told apart.
func TestCloseVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(vectors.Dir(), "closes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Closes []struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"closes"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Closes) == 0 {
		t.Fatal("no close vectors")
	}
	for _, v := range file.Closes {
		read := fmt.Errorf("failed to read: %w", websocket.CloseError{Code: websocket.StatusCode(v.Code), Reason: v.Reason})
		got := closeErr(read)
		if errors.Is(got, ErrClosed) || got == nil {
			t.Errorf("close %d %q: %v, want an error of its own", v.Code, v.Reason, got)
		}
		if v.Code == proto.CloseForbidden {
			want := map[string]error{proto.ForbiddenSignIn: ErrSignInRequired, proto.ForbiddenNetwork: ErrNetwork}[v.Reason]
			if want == nil || got != want {
				t.Errorf("close 4009 %q: %v, want %v", v.Reason, got, want)
			}
		}
	}
	// An unknown reason is still a refusal by policy.
	if got := closeErr(websocket.CloseError{Code: proto.CloseForbidden, Reason: "?"}); got != ErrForbidden {
		t.Errorf("4009 with an unknown reason: %v", got)
	}
}
