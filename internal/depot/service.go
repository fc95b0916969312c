package depot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/clientip"
)

// Policy errors MayStore returns; the API answers each with its own code.
var (
	ErrForbidden      = errors.New("depot: not allowed")
	ErrSignInRequired = errors.New("depot: sign-in required")
	ErrRateLimited    = errors.New("depot: rate limited")
)

// Config is what a Service needs; Blobs and Meta are required.
type Config struct {
	Blobs  Blobs
	Meta   Meta
	Now    func() time.Time
	Logger *slog.Logger
	// ClientIP is the client's address as the edge resolves it.
	ClientIP func(*http.Request) netip.Addr
	// MayStore applies the operator's policy to a request that creates a
	// stored transfer: it returns the owner ("" for anonymous) or an error
	// wrapping ErrForbidden, ErrSignInRequired or ErrRateLimited.
	MayStore func(r *http.Request, ip netip.Addr) (owner string, err error)
	// LiveToken, if set, returns the token the sender of live link id was
	// given to store that link's transfer under the same id ("" if none).
	LiveToken func(id string) string
	// MaxSize bounds a transfer's plaintext size (0: none).
	MaxSize int64
	// MaxParts bounds the parts of one data object (S3 allows 10,000; 0: none).
	MaxParts int
	// DefaultExpire and MaxExpire: a transfer's lifetime when the sender
	// asks for none, and the most it may ask for.
	DefaultExpire, MaxExpire time.Duration
	// MaxDownloads bounds the download limit a sender may set (0: none);
	// Unlimited allows transfers without a download limit.
	MaxDownloads int
	Unlimited    bool
	Quota        Quota
	// UploadWithin bounds how long an upload may stay unfinished before
	// the janitor removes it (default 24 h).
	UploadWithin time.Duration
	// JanitorEvery is how often expired and used-up transfers are removed.
	JanitorEvery time.Duration
	// Observe receives events for metrics and the audit log.
	Observe func(Event)
}

// Event kinds passed to Config.Observe.
const (
	EventCreated   = "stored_created"
	EventUploaded  = "stored_uploaded"
	EventStarted   = "stored_download_started"
	EventVerified  = "stored_download_verified"
	EventAborted   = "stored_download_aborted"
	EventDeleted   = "stored_deleted"
	EventExpired   = "stored_expired"
	EventUsedUp    = "stored_used_up"
	EventRefused   = "stored_refused" // Reason says why
	EventJanitor   = "stored_janitor_run"
	EventBackend   = "stored_backend_error" // Reason: blobs or meta
	EventPartBytes = "stored_part"          // Bytes of one part uploaded (metrics only)
)

// Event is something metrics and the audit log may want to know. It never
// carries tokens, keys or contents.
type Event struct {
	Kind   string
	ID     string
	IP     netip.Addr
	Owner  string
	Reason string
	Bytes  int64
	Used   int
	Limit  int
}

// Service is the stored-transfer part of `ferry serve`.
type Service struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	sweep chan struct{}

	mu       sync.Mutex
	orphaned map[string]bool // blobs without a record at the janitor's last run
	count    int             // transfers and their bytes at the janitor's last run
	bytes    int64
}

// New checks cfg and returns a Service; Run starts its janitor and Handler
// serves its API.
func New(cfg Config) (*Service, error) {
	if cfg.Blobs == nil || cfg.Meta == nil {
		return nil, errors.New("depot: Blobs and Meta are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = clientip.RemoteAddr
	}
	if cfg.MayStore == nil {
		cfg.MayStore = func(*http.Request, netip.Addr) (string, error) { return "", nil }
	}
	if cfg.DefaultExpire <= 0 {
		cfg.DefaultExpire = 7 * 24 * time.Hour
	}
	if cfg.MaxExpire < cfg.DefaultExpire {
		cfg.MaxExpire = cfg.DefaultExpire
	}
	if cfg.UploadWithin <= 0 {
		cfg.UploadWithin = 24 * time.Hour
	}
	if cfg.JanitorEvery <= 0 {
		cfg.JanitorEvery = time.Minute
	}
	if cfg.Observe == nil {
		cfg.Observe = func(Event) {}
	}
	return &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, sweep: make(chan struct{}, 1)}, nil
}

// Run removes expired and used-up transfers until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.JanitorEvery)
	defer t.Stop()
	for {
		s.Janitor(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.sweep:
		}
	}
}

// soon asks the janitor for a run now (a transfer was used up).
func (s *Service) soon() {
	select {
	case s.sweep <- struct{}{}:
	default:
	}
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func tokenMatches(tok string, hash []byte) bool {
	return tok != "" && subtle.ConstantTimeCompare(hashToken(tok), hash) == 1
}

// PartCount returns how many parts a data object of size bytes has.
func PartCount(size int64) int {
	return int(max(1, (size+PartSize-1)/PartSize))
}

// PartLen returns the size of part n of a data object of size bytes.
func PartLen(size int64, n int) int64 {
	return min(PartSize, size-int64(n)*PartSize)
}
