package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/transfer"
)

func TestDescribe(t *testing.T) {
	other := errors.New("transfer: disk full")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("peer: joining: %w", sigclient.ErrUsed), "this link was already used; ask the sender for a new one"},
		{sigclient.ErrRateLimited, "too many attempts or connections from this address; wait a minute and try again"},
		{fmt.Errorf("receiving: %w", other), "receiving: transfer: disk full"},
		{fmt.Errorf("%w: %w", peer.ErrSessionLost, sigclient.ErrCanceled), "could not reconnect to the other side: the other side canceled"},
		{fmt.Errorf("%w: %s", transfer.ErrExists, `["a.txt"]`), `transfer: file already exists: ["a.txt"] (use --force to overwrite)`},
	} {
		if got := describe(tc.err); got != tc.want {
			t.Errorf("describe(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	// Every close-code error a user can meet has words.
	for _, err := range []error{sigclient.ErrUnknown, sigclient.ErrExpired, sigclient.ErrUsed, sigclient.ErrWrongKey,
		sigclient.ErrPeerGone, sigclient.ErrCanceled, sigclient.ErrRateLimited, sigclient.ErrForbidden, sigclient.ErrVersion,
		sigclient.ErrTimeout, sigclient.ErrShutdown, sigclient.ErrReplaced, sigclient.ErrLimit} {
		if describe(err) == err.Error() {
			t.Errorf("%v has no wording for people", err)
		}
	}
}
