package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme is defined with HMAC-SHA1
	"encoding/base64"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
)

// Credentials returns a TURN REST username ("<expiry>:<user>") and password
// (base64 HMAC-SHA1 of the username under the shared secret), valid for ttl.
// Any TURN server configured with the same secret (coturn's
// use-auth-secret/static-auth-secret, `ferry turn`) accepts them.
func Credentials(secret, user string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + user
	return username, Password(secret, username)
}

// Password is the TURN REST password for username.
func Password(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func parseUsername(username string) (expiry int64, user string, ok bool) {
	ts, user, found := strings.Cut(username, ":")
	if !found {
		return 0, "", false
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return exp, user, true
}

// URLs returns the STUN and TURN (UDP and TCP) URLs for a server at host:port.
func URLs(host string, port int) (stun []string, turn []string) {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	return []string{"stun:" + hp},
		[]string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
}

// ICEServers builds the client's ICE server list for one TURN endpoint.
func ICEServers(stun, turn []string, username, password string) []proto.ICEServer {
	var out []proto.ICEServer
	if len(stun) > 0 {
		out = append(out, proto.ICEServer{URLs: stun})
	}
	if len(turn) > 0 {
		out = append(out, proto.ICEServer{URLs: turn, Username: username, Credential: password})
	}
	return out
}

// ExternalICEServers splits configured URLs into a STUN entry and a TURN
// entry carrying the credentials.
func ExternalICEServers(urls []string, username, password string) []proto.ICEServer {
	var stun, turn []string
	for _, u := range urls {
		if strings.HasPrefix(u, "stun:") {
			stun = append(stun, u)
		} else {
			turn = append(turn, u)
		}
	}
	return ICEServers(stun, turn, username, password)
}
