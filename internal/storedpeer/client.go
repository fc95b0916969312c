// Package storedpeer is the Go peer of stored transfers (PROTOCOL.md §6):
// it uploads files sealed to a ferry server and downloads them again, with
// the same receiver, checks and resume as a live transfer.
package storedpeer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferrydev/ferry/internal/depot"
)

// Errors the server answers with; the CLI words them.
var (
	ErrNotFound    = errors.New("storedpeer: no such stored transfer")
	ErrExpired     = errors.New("storedpeer: the stored transfer expired")
	ErrUsedUp      = errors.New("storedpeer: the stored transfer's download limit is reached")
	ErrNotReady    = errors.New("storedpeer: the stored transfer is still being uploaded")
	ErrForbidden   = errors.New("storedpeer: storing is not allowed")
	ErrSignIn      = errors.New("storedpeer: storing needs sign-in")
	ErrRateLimited = errors.New("storedpeer: rate limited")
	ErrTooLarge    = errors.New("storedpeer: larger than the server stores")
	ErrQuota       = errors.New("storedpeer: storage quota reached")
	ErrFull        = errors.New("storedpeer: the server's storage is full")
	ErrConflict    = errors.New("storedpeer: the server's state differs")
	ErrBadRequest  = errors.New("storedpeer: the server refused the request")
	ErrServer      = errors.New("storedpeer: server error")
	ErrUnsupported = errors.New("storedpeer: the server does not store transfers")
	ErrTampered    = errors.New("storedpeer: the stored data does not open with this link")
)

var codeErrors = map[string]error{
	"not_found": ErrNotFound, "expired": ErrExpired, "used_up": ErrUsedUp, "not_ready": ErrNotReady,
	"forbidden": ErrForbidden, "sign_in_required": ErrSignIn, "rate_limited": ErrRateLimited,
	"too_large": ErrTooLarge, "quota": ErrQuota, "storage_full": ErrFull, "conflict": ErrConflict,
	"bad_request": ErrBadRequest, "damaged": ErrTampered,
}

// Client talks to one ferry server's stored-transfer API.
type Client struct {
	// Base is the server's base URL.
	Base *url.URL
	// HTTP is the client to use (nil: http.DefaultClient).
	HTTP *http.Client
	// Token is a sender token (Authorization: Bearer) for creating, if the
	// server asks for one.
	Token string
}

func (c *Client) url(parts ...string) string {
	u := *c.Base
	u.Path = strings.TrimSuffix(u.Path, "/") + depot.Path
	for _, p := range parts {
		u.Path += "/" + url.PathEscape(p)
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// statusError turns a refusal into one of the errors above.
func statusError(resp *http.Response) error {
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
	if err, ok := codeErrors[body.Error]; ok {
		return err
	}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		// An older server, or one without storage, has no such route.
		return ErrUnsupported
	}
	return fmt.Errorf("%w: %s", ErrServer, resp.Status)
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, u string, hdr http.Header, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			return fmt.Errorf("%w: %w", ErrServer, err)
		}
	}
	return nil
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func reader(tok string) http.Header { return http.Header{depot.ReadHeader: {tok}} }

// Delete removes a stored transfer with its write token.
func (c *Client) Delete(ctx context.Context, id, writeToken string) error {
	return c.do(ctx, http.MethodDelete, c.url(id), bearer(writeToken), nil, nil)
}

// Probe asks whether link id is a stored transfer, with its read token: it
// returns its status, ErrNotFound (a live link, or none), or another error.
func (c *Client) Probe(ctx context.Context, id, readToken string) (depot.Status, error) {
	var st depot.Status
	err := c.do(ctx, http.MethodGet, c.url(id), reader(readToken), nil, &st)
	return st, err
}
