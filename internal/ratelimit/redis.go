package ratelimit

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTimeout bounds one shared check; past it the local bucket decides.
const redisTimeout = 500 * time.Millisecond

// luaGCRA is the generic cell rate algorithm, the token bucket of New in
// one timestamp per key: the key holds the "theoretical arrival time" (ms)
// of the next event; an event is allowed when that lies at most
// burst*every ahead of now, and it moves the time on by every. The key
// expires when the bucket would be full again, so idle clients cost
// nothing. Times come from the caller's clock (instances' clocks should
// agree, NTP), which keeps injected clocks in tests meaningful.
//
// KEYS[1] key; ARGV[1] now (ms), ARGV[2] every (ms), ARGV[3] burst.
// Returns 1 if allowed, else 0.
const luaGCRA = `
local now = tonumber(ARGV[1])
local every = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ntat = tat + every
if ntat - now > every * burst then
  return 0
end
redis.call('SET', KEYS[1], string.format("%d", ntat), "PX", string.format("%d", ntat - now))
return 1
`

var gcra = redis.NewScript(luaGCRA)

// shared is a Limiter's Redis backend.
type shared struct {
	rdb    redis.Scripter
	prefix string
	log    *slog.Logger
	// down is set while Redis fails, so the change is logged once each way.
	down atomic.Bool
}

// RedisOptions configure a limiter shared through Redis.
type RedisOptions struct {
	// Client is the Redis connection (owned by the caller).
	Client redis.Scripter
	// Prefix namespaces the keys: Prefix + key of the address. Limiters
	// with one prefix share their counters, so give each limit its own.
	Prefix string
	Logger *slog.Logger
}

// NewShared returns a limiter like New whose counters live in Redis, so
// several instances sharing one Redis limit a client together rather than
// each on its own.
//
// When Redis does not answer (within 500 ms), the limiter falls back to its
// own in-memory bucket, the per-instance limit of New: it neither lets
// everything through (failing open would lift the limit exactly when
// someone overloads the shared store) nor refuses everyone (failing closed
// would turn a Redis hiccup into an outage). The switch is logged, once each
// way.
func NewShared(every time.Duration, burst int, now func() time.Time, o RedisOptions) *Limiter {
	l := New(every, burst, now)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l.shared = &shared{rdb: o.Client, prefix: o.Prefix, log: o.Logger}
	return l
}

// allow runs the shared check; ok is meaningless when err is not nil.
func (s *shared) allow(k netip.Addr, now time.Time, every time.Duration, burst int) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	ms := max(every.Milliseconds(), 1)
	n, err := gcra.Run(ctx, s.rdb, []string{s.prefix + k.String()},
		strconv.FormatInt(now.UnixMilli(), 10), strconv.FormatInt(ms, 10), strconv.Itoa(burst)).Int()
	if err != nil {
		if !s.down.Swap(true) {
			s.log.Warn("rate limits: Redis unavailable, limiting per instance until it is back", "prefix", s.prefix, "err", err)
		}
		return false, err
	}
	if s.down.Swap(false) {
		s.log.Info("rate limits: Redis is back, limits are shared again", "prefix", s.prefix)
	}
	return n == 1, nil
}
