package proto

// Subprotocol is the WebSocket subprotocol of signaling version 1. A client
// offering anything else is closed with CloseVersion.
const Subprotocol = "ferry.v1"

// SignalPath is where the signaling WebSocket is served.
const SignalPath = "/api/v1/signal"

// MaxSignalMessage bounds every WebSocket message in either direction.
const MaxSignalMessage = 64 << 10

// WebSocket close codes (4000-4999 are for applications). Clients map them
// to user-facing messages; docs/PROTOCOL.md lists them.
const (
	CloseProtocol    = 4000 // malformed or unexpected message
	CloseVersion     = 4001 // unsupported protocol version (subprotocol)
	CloseTooLarge    = 4002 // message over MaxSignalMessage
	CloseRateLimited = 4003 // too many tickets/joins from this address
	CloseNotFound    = 4004 // no such ticket or session
	CloseExpired     = 4005 // ticket expired
	CloseUsed        = 4006 // ticket already used
	CloseWrongKey    = 4007 // key confirmation failed: the ticket is burned
	ClosePeerGone    = 4008 // the other peer disconnected
	CloseForbidden   = 4009 // policy: address not allowed or sign-in required
	CloseTimeout     = 4010 // waited too long for a peer
	CloseCanceled    = 4011 // the other peer canceled
	CloseShutdown    = 4012 // server shutting down; try again
	CloseLimit       = 4013 // a per-ticket limit was reached (messages, resumes)
	CloseTaken       = 4014 // that role of the session is already connected
)

// ClientMessage is a text message from a client to the server.
type ClientMessage struct {
	Type string `json:"type"`
	// join: ticket id
	ID string `json:"id,omitempty"`
	// resume: session id and our role ("S" or "R"); session: register one.
	Session string `json:"session,omitempty"`
	Role    string `json:"role,omitempty"`
	// abort: reason (AbortWrongKey, AbortCanceled)
	Reason string `json:"reason,omitempty"`
	// report: how the transfer went, for metrics and the audit log.
	Path    string   `json:"path,omitempty"`
	Bytes   int64    `json:"bytes,omitempty"`
	Outcome string   `json:"outcome,omitempty"`
	Files   int      `json:"files,omitempty"`
	Names   []string `json:"names,omitempty"`
}

// Client message types.
const (
	MsgCreate  = "create"
	MsgJoin    = "join"
	MsgResume  = "resume"
	MsgSession = "session"
	MsgAbort   = "abort"
	MsgReport  = "report"
	MsgICE     = "ice"
)

// Abort reasons.
const (
	AbortWrongKey = "wrong_key"
	AbortCanceled = "canceled"
)

// Report values.
const (
	PathDirect = "direct"
	PathRelay  = "relay"

	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
	OutcomeCanceled  = "canceled"
)

// ServerMessage is a text message from the server to a client.
type ServerMessage struct {
	Type string `json:"type"`
	// created: the ticket id and its expiry (Unix seconds)
	ID      string `json:"id,omitempty"`
	Expires int64  `json:"expires,omitempty"`
	// created, joined, resumed, ice: ICE servers with fresh TURN credentials
	ICEServers []ICEServer `json:"iceServers,omitempty"`
	// created, joined: the largest transfer the server's policy allows (0 = no limit)
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// created, joined: the operator records file names; include them in the report
	AuditNames bool `json:"auditNames,omitempty"`
	// created: lets the sender store this link's transfer (PROTOCOL.md §6.5)
	StoreToken string `json:"storeToken,omitempty"`
}

// Server message types.
const (
	MsgCreated = "created"
	MsgJoined  = "joined"
	MsgResumed = "resumed"
	MsgPaired  = "paired"
	// MsgICE answers a client's MsgICE with fresh ICE servers.
)

// Peer features announced in the sealed info message.
const (
	FeatureResume       = "resume"
	FeatureZeroChecksum = "zero-checksum"
	// FeatureLargePackets: the peer reads SCTP packets of up to 8192 bytes
	// (PROTOCOL.md §3.3); the other side may then send them where the path
	// allows.
	FeatureLargePackets = "large-packets"
	// FeatureJumboPackets: the peer reads SCTP packets of up to 65535
	// bytes, one DTLS record in one UDP datagram (PROTOCOL.md §3.3).
	FeatureJumboPackets = "jumbo-packets"
	// FeatureQUIC: between two peers that announce it, the transfer runs
	// over a QUIC connection on the ICE connection, set up over the data
	// channel (PROTOCOL.md §4.7).
	FeatureQUIC = "quic"
)

// ICEServer is an RTCIceServer as the browser takes it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Signal is a sealed peer-to-peer signaling payload (JSON inside SEALED).
type Signal struct {
	T string `json:"t"`
	// info
	Agent    string   `json:"agent,omitempty"`
	Features []string `json:"features,omitempty"`
	// sdp
	Type string `json:"type,omitempty"`
	SDP  string `json:"sdp,omitempty"`
	// cand; an empty Candidate means end of candidates
	Candidate     *string `json:"candidate,omitempty"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
	// sdp, cand, restart: connection generation
	Gen int `json:"gen,omitempty"`
	// sdp: the stripe connection k of generation Gen (PROTOCOL.md §3.4);
	// 0 is the main connection.
	Stripe int `json:"stripe,omitempty"`
	// bye
	Reason string `json:"reason,omitempty"`
}

// Signal types.
const (
	SigInfo    = "info"
	SigSDP     = "sdp"
	SigCand    = "cand"
	SigRestart = "restart"
	SigBye     = "bye"
)

// MaxReportNames bounds the file names of one report: their JSON lengths
// plus 4 bytes each (PROTOCOL.md §2.5).
const MaxReportNames = 48 << 10
