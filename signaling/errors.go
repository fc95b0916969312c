package signaling

import (
	"errors"
	"fmt"

	"github.com/coder/websocket"
	"github.com/ferrydev/ferry/internal/proto"
)

// Sentinel errors. Handlers return these; closeFor maps them to close codes in
// one place, and nothing else about an error reaches a client.
var (
	ErrNotFound    = errors.New("signaling: no such ticket or session")
	ErrExpired     = errors.New("signaling: ticket expired")
	ErrUsed        = errors.New("signaling: ticket already used")
	ErrExists      = errors.New("signaling: id already exists")
	ErrRateLimited = errors.New("signaling: rate limited")
	ErrForbidden   = errors.New("signaling: forbidden by policy")
	// ErrSignInRequired is the ErrForbidden of a sender who must sign in.
	ErrSignInRequired = fmt.Errorf("%w: sign-in required", ErrForbidden)
	ErrProtocol       = errors.New("signaling: protocol violation")
	ErrVersion        = errors.New("signaling: unsupported protocol version")
	ErrTooLarge       = errors.New("signaling: message too large")
	ErrLimit          = errors.New("signaling: per-pairing limit reached")
	ErrWrongKey       = errors.New("signaling: key confirmation failed")
	ErrPeerGone       = errors.New("signaling: peer disconnected")
	ErrCanceled       = errors.New("signaling: peer canceled")
	ErrTimeout        = errors.New("signaling: timed out waiting for peer")
	ErrIdle           = errors.New("signaling: idle for too long")
	// ErrTooManyConns is the ErrRateLimited of an address at its cap of
	// concurrent connections.
	ErrTooManyConns = fmt.Errorf("%w: too many connections", ErrRateLimited)
	ErrShutdown     = errors.New("signaling: server shutting down")
	ErrReplaced     = errors.New("signaling: replaced by a newer connection")
	ErrInternal     = errors.New("signaling: internal error")
)

var closeCodes = []struct {
	err    error
	code   websocket.StatusCode
	reason string
}{
	{ErrProtocol, proto.CloseProtocol, "protocol error"},
	{ErrVersion, proto.CloseVersion, "unsupported protocol version; reload the page"},
	{ErrTooLarge, proto.CloseTooLarge, "message too large"},
	{ErrTooManyConns, proto.CloseRateLimited, "too many connections from this address"},
	{ErrRateLimited, proto.CloseRateLimited, "too many requests; wait a minute"},
	{ErrNotFound, proto.CloseNotFound, "unknown link"},
	{ErrExpired, proto.CloseExpired, "link expired"},
	{ErrUsed, proto.CloseUsed, "link already used"},
	{ErrWrongKey, proto.CloseWrongKey, "wrong key; link closed"},
	{ErrPeerGone, proto.ClosePeerGone, "peer disconnected"},
	{ErrSignInRequired, proto.CloseForbidden, proto.ForbiddenSignIn},
	{ErrForbidden, proto.CloseForbidden, proto.ForbiddenNetwork},
	{ErrTimeout, proto.CloseTimeout, "timed out"},
	{ErrIdle, proto.CloseTimeout, "idle for too long"},
	{ErrCanceled, proto.CloseCanceled, "canceled by peer"},
	{ErrShutdown, proto.CloseShutdown, "server shutting down"},
	{ErrLimit, proto.CloseLimit, "limit reached"},
	{ErrReplaced, proto.CloseTaken, "replaced by a newer connection"},
}

// closeFor maps an error to the close code and the short, fixed reason a
// client may see.
func closeFor(err error) (websocket.StatusCode, string) {
	for _, c := range closeCodes {
		if errors.Is(err, c.err) {
			return c.code, c.reason
		}
	}
	return websocket.StatusInternalError, "internal error"
}
