package main

import (
	"errors"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/storedpeer"
	"github.com/ferrydev/ferry/internal/transfer"
)

// userMessages word the library errors a person can act on; describe uses
// the first that matches. Library errors stay terse and stable.
var userMessages = []struct {
	err error
	msg string
}{
	{sigclient.ErrUnknown, "this link is not known to the server (mistyped, or the server restarted)"},
	{sigclient.ErrExpired, "this link has expired; ask the sender for a new one"},
	{sigclient.ErrUsed, "this link was already used; ask the sender for a new one"},
	{sigclient.ErrWrongKey, "the link's secret did not match; for safety the link is now closed, ask for a new one"},
	{sigclient.ErrPeerGone, "the other side disconnected"},
	{sigclient.ErrCanceled, "the other side canceled"},
	{sigclient.ErrRateLimited, "too many attempts or connections from this address; wait a minute and try again"},
	{sigclient.ErrSignInRequired, "this server lets only signed-in people send: pass the sender token the operator gave you (--token or FERRY_TOKEN)"},
	{sigclient.ErrNetwork, "the server does not allow this from your network"},
	{sigclient.ErrForbidden, "the server's policy does not allow this: sending may need sign-in (--token) or be limited to some networks"},
	{sigclient.ErrVersion, "the server speaks a different protocol version; update ferry"},
	{sigclient.ErrTimeout, "timed out waiting for the other side"},
	{sigclient.ErrShutdown, "the server is shutting down; try again"},
	{sigclient.ErrReplaced, "another connection took over this session"},
	{sigclient.ErrLimit, "a server limit for this transfer was reached"},
	{storedpeer.ErrNotFound, "this stored transfer is not known to the server (mistyped, deleted, or already removed after it expired)"},
	{storedpeer.ErrExpired, "this link has expired; ask the sender for a new one"},
	{storedpeer.ErrUsedUp, "this link was already downloaded as many times as the sender allowed; ask the sender for a new one"},
	{storedpeer.ErrNotReady, "the sender is still uploading the files; try again later"},
	{storedpeer.ErrForbidden, "the server's policy does not let you store files (it may allow only some networks)"},
	{storedpeer.ErrSignIn, "storing files on this server needs sign-in: pass a sender token with --token"},
	{storedpeer.ErrRateLimited, "too many attempts from this address; wait a minute and try again"},
	{storedpeer.ErrTooLarge, "the files are larger than this server stores"},
	{storedpeer.ErrQuota, "your storage quota on this server is used up; delete stored transfers or ask the operator"},
	{storedpeer.ErrFull, "the server's storage is full; try again later or ask the operator"},
	{storedpeer.ErrUnsupported, "this server does not store transfers (send without --store)"},
	{storedpeer.ErrTampered, "the stored data was changed or damaged on the server: nothing unverified was written; ask the sender to send again"},
	{storedpeer.ErrInterrupted, "the connection to the server was lost"},
}

// hints follow the text of errors whose details (which files) matter.
var hints = []struct {
	err  error
	hint string
}{
	{transfer.ErrExists, "use --force to overwrite"},
	{transfer.ErrReceivedChanged, "move it away, or use --force to fetch it again"},
}

// describe is what the CLI prints for err.
func describe(err error) string {
	if errors.Is(err, peer.ErrSessionLost) {
		// Why resuming failed is the part a person can act on.
		return "could not reconnect to the other side: " + word(err)
	}
	for _, h := range hints {
		if errors.Is(err, h.err) {
			return err.Error() + " (" + h.hint + ")"
		}
	}
	return word(err)
}

func word(err error) string {
	for _, m := range userMessages {
		if errors.Is(err, m.err) {
			return m.msg
		}
	}
	return err.Error()
}
