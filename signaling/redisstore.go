package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix namespaces every key and channel, so one Redis can be
// shared with other applications (or several ferry deployments, each with
// its own prefix).
const DefaultRedisPrefix = "ferry:"

// RedisOptions configure a RedisStore.
type RedisOptions struct {
	// URL is redis://[user:pass@]host:port/db, rediss://… or unix:///path;
	// go-redis query parameters (pool_size=, dial_timeout=, …) are accepted.
	URL string
	// Prefix of every key and channel (DefaultRedisPrefix if empty).
	Prefix string
	// Now is the store's clock for session and slot expiry (time.Now if
	// nil). Ticket expiry is decided by the now passed to ConsumeTicket.
	Now func() time.Time
}

// RedisStore is the Store shared by several instances through one Redis.
//
// Key layout (P = prefix):
//
//	P t:<id>          hash {j: ticket JSON (until consumed), e: expiry stamp, u: "0"|"1"}; TTL expiry+tombstoneGrace
//	P live            zset ticket id -> expiry (µs); unconsumed tickets, for Stats/LiveTickets
//	P s:<sid>         hash {j: session JSON, e: expiry stamp}; TTL the session's ttl
//	P sessions        zset session id -> expiry (µs), for Stats
//	P slot:<key>|<r>  string "<expiry stamp>|<conn id>"; TTL the slot's ttl
//	P i:<instance>    pub/sub channel of one instance
//
// Expiry decisions compare stamps (zero-padded 19-digit Unix nanoseconds)
// exactly against the caller's or the store's clock; Redis TTLs only
// collect garbage. That keeps fake clocks in tests meaningful and makes the
// semantics identical to MemoryStore. Instances' clocks should agree to
// well under a slot's ttl (NTP).
//
// Scripts touch a key and its index together, so this needs one Redis
// (or a primary with replicas/Sentinel), not Redis Cluster.
type RedisStore struct {
	rdb    *redis.Client
	prefix string
	now    func() time.Time

	createTicket, consumeTicket, deleteTicket *redis.Script
	putSession, touchSession                  *redis.Script
	claimSlot, refreshSlot, releaseSlot       *redis.Script
}

// NewRedisStore connects to Redis at url with the default prefix and clock.
func NewRedisStore(ctx context.Context, url string) (*RedisStore, error) {
	return NewRedisStoreWith(ctx, RedisOptions{URL: url})
}

// NewRedisStoreWith connects to Redis and checks that it answers, so a
// misconfigured --redis fails at start-up rather than at the first link.
func NewRedisStoreWith(ctx context.Context, o RedisOptions) (*RedisStore, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("signaling: redis URL: %w", err)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultRedisPrefix
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &RedisStore{
		rdb:           redis.NewClient(opt),
		prefix:        o.Prefix,
		now:           o.Now,
		createTicket:  redis.NewScript(luaCreateTicket),
		consumeTicket: redis.NewScript(luaConsumeTicket),
		deleteTicket:  redis.NewScript(luaDeleteTicket),
		putSession:    redis.NewScript(luaPutSession),
		touchSession:  redis.NewScript(luaTouchSession),
		claimSlot:     redis.NewScript(luaClaimSlot),
		refreshSlot:   redis.NewScript(luaRefreshSlot),
		releaseSlot:   redis.NewScript(luaReleaseSlot),
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.rdb.Ping(pctx).Err(); err != nil {
		_ = r.rdb.Close()
		return nil, fmt.Errorf("signaling: redis at %s: %w", opt.Addr, err)
	}
	return r, nil
}

// Close closes the Redis client (subscriptions end with their contexts).
func (r *RedisStore) Close() error { return r.rdb.Close() }

// rerr wraps a Redis failure so that the server treats it as internal.
func rerr(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", ErrInternal, op, err)
}

func (r *RedisStore) ticketKey(id string) string { return r.prefix + "t:" + id }
func (r *RedisStore) liveKey() string            { return r.prefix + "live" }
func (r *RedisStore) sessionKey(id string) string {
	return r.prefix + "s:" + id
}
func (r *RedisStore) sessionsKey() string { return r.prefix + "sessions" }
func (r *RedisStore) linksKey() string    { return r.prefix + "links" }
func (r *RedisStore) slotKey(key, role string) string {
	return r.prefix + "slot:" + slotKey(key, role)
}
func (r *RedisStore) channel(instance string) string { return r.prefix + "i:" + instance }

// stamp encodes t in a fixed width that Lua can split into two exactly
// comparable numbers (19 digits cover int64 nanoseconds; times outside
// 1970..2262 are clamped).
func stamp(t time.Time) string {
	var ns int64
	switch {
	case t.Before(time.Unix(0, 0)):
		ns = 0
	case t.After(time.Unix(0, math.MaxInt64)):
		ns = math.MaxInt64
	default:
		ns = t.UnixNano()
	}
	return fmt.Sprintf("%019d", ns)
}

func parseStamp(s string) (time.Time, error) {
	ns, err := strconv.ParseInt(s, 10, 64)
	if err != nil || len(s) != 19 {
		return time.Time{}, fmt.Errorf("%w: bad stamp %q in redis", ErrInternal, s)
	}
	return time.Unix(0, ns), nil
}

// score is a zset score: microseconds are exact in a float64 until 2255.
func score(t time.Time) float64 { return float64(t.UnixMicro()) }

// ms is a TTL for PEXPIRE / SET PX, which refuse zero and negatives.
func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// luaBefore compares two stamps numerically, in two exact halves: Lua
// number conversion would lose nanoseconds, and its string comparison
// follows the server's collation locale.
const luaBefore = `
local function before(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  if ah ~= bh then return ah < bh end
  return tonumber(string.sub(a, 11, 19)) < tonumber(string.sub(b, 11, 19))
end`

// Lua scripts: each runs atomically in Redis, which is what makes a ticket
// consumable exactly once across instances. Return codes are small integers
// mapped to sentinel errors in Go.

// KEYS: ticket, live. ARGV: json, expiry stamp, key TTL ms, expiry score, id.
const luaCreateTicket = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'e', ARGV[2], 'u', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1`

// KEYS: ticket, live. ARGV: now stamp, id. Returns {code, json}. The
// tombstone left behind needs only the flag and the expiry: the ticket's
// JSON (with the creator's address) goes now rather than a day later.
const luaConsumeTicket = luaBefore + `
local v = redis.call('HMGET', KEYS[1], 'u', 'e', 'j')
if not v[1] then return {0, ''} end
if v[1] == '1' then return {2, ''} end
if not before(ARGV[1], v[2]) then return {3, ''} end
redis.call('HSET', KEYS[1], 'u', '1')
redis.call('HDEL', KEYS[1], 'j')
redis.call('ZREM', KEYS[2], ARGV[2])
return {1, v[3]}`

// KEYS: ticket, live. ARGV: id, now stamp. Only unconsumed, unexpired
// tickets: a used or expired one stays as a tombstone so a late opener
// still hears "used" or "expired".
const luaDeleteTicket = luaBefore + `
local v = redis.call('HMGET', KEYS[1], 'u', 'e')
if v[1] == '0' and before(ARGV[2], v[2]) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1`

// KEYS: session, sessions. ARGV: json, expiry stamp, TTL ms, now stamp,
// expiry score, id. A session that has logically expired may be replaced.
const luaPutSession = luaBefore + `
local e = redis.call('HGET', KEYS[1], 'e')
if e and before(ARGV[4], e) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
return 1`

// KEYS: session, sessions. ARGV: now stamp, new expiry stamp, TTL ms,
// expiry score, id.
const luaTouchSession = luaBefore + `
local e = redis.call('HGET', KEYS[1], 'e')
if not e or not before(ARGV[1], e) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1`

// Slot values are "<19-digit expiry stamp>|<conn id>".

// KEYS: slot. ARGV: now stamp, new value, TTL ms. Returns the previous
// live holder or "".
const luaClaimSlot = luaBefore + `
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if v and before(ARGV[1], string.sub(v, 1, 19)) then return string.sub(v, 21) end
return ''`

// KEYS: slot. ARGV: now stamp, conn, new value, TTL ms.
const luaRefreshSlot = luaBefore + `
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 21) ~= ARGV[2] or not before(ARGV[1], string.sub(v, 1, 19)) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1`

// KEYS: slot. ARGV: conn.
const luaReleaseSlot = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 21) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`

func (r *RedisStore) CreateTicket(ctx context.Context, t Ticket) error {
	js, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	}
	// The key outlives the ticket by the tombstone grace, so a late opener
	// hears "expired" or "used" rather than "unknown".
	ttl := max(t.Expires.Sub(r.now()), 0) + tombstoneGrace
	ok, err := r.createTicket.Run(ctx, r.rdb, []string{r.ticketKey(t.ID), r.liveKey()},
		js, stamp(t.Expires), ms(ttl), score(t.Expires), t.ID).Int()
	if err != nil {
		return rerr("create ticket", err)
	}
	if ok == 0 {
		return ErrExists
	}
	return nil
}

func (r *RedisStore) ConsumeTicket(ctx context.Context, id string, now time.Time) (Ticket, error) {
	res, err := r.consumeTicket.Run(ctx, r.rdb, []string{r.ticketKey(id), r.liveKey()}, stamp(now), id).Slice()
	if err != nil {
		return Ticket{}, rerr("consume ticket", err)
	}
	if len(res) != 2 {
		return Ticket{}, fmt.Errorf("%w: consume ticket: unexpected reply %v", ErrInternal, res)
	}
	code, _ := res[0].(int64)
	switch code {
	case 0:
		return Ticket{}, ErrNotFound
	case 2:
		return Ticket{}, ErrUsed
	case 3:
		return Ticket{}, ErrExpired
	}
	js, _ := res[1].(string)
	var t Ticket
	if err := json.Unmarshal([]byte(js), &t); err != nil {
		return Ticket{}, fmt.Errorf("%w: ticket %s in redis: %v", ErrInternal, id, err)
	}
	return t, nil
}

func (r *RedisStore) DeleteTicket(ctx context.Context, id string) error {
	if err := r.deleteTicket.Run(ctx, r.rdb, []string{r.ticketKey(id), r.liveKey()}, id, stamp(r.now())).Err(); err != nil {
		return rerr("delete ticket", err)
	}
	return nil
}

func (r *RedisStore) PutSession(ctx context.Context, s Session, ttl time.Duration) error {
	js, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	}
	now := r.now()
	exp := now.Add(ttl)
	ok, err := r.putSession.Run(ctx, r.rdb, []string{r.sessionKey(s.ID), r.sessionsKey()},
		js, stamp(exp), ms(ttl), stamp(now), score(exp), s.ID).Int()
	if err != nil {
		return rerr("put session", err)
	}
	if ok == 0 {
		return ErrExists
	}
	return nil
}

func (r *RedisStore) GetSession(ctx context.Context, id string) (Session, error) {
	v, err := r.rdb.HMGet(ctx, r.sessionKey(id), "j", "e").Result()
	if err != nil {
		return Session{}, rerr("get session", err)
	}
	js, ok1 := v[0].(string)
	e, ok2 := v[1].(string)
	if !ok1 || !ok2 {
		return Session{}, ErrNotFound
	}
	exp, err := parseStamp(e)
	if err != nil {
		return Session{}, err
	}
	if !r.now().Before(exp) {
		return Session{}, ErrNotFound
	}
	var s Session
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		return Session{}, fmt.Errorf("%w: session in redis: %v", ErrInternal, err)
	}
	return s, nil
}

func (r *RedisStore) TouchSession(ctx context.Context, id string, ttl time.Duration) error {
	now := r.now()
	exp := now.Add(ttl)
	ok, err := r.touchSession.Run(ctx, r.rdb, []string{r.sessionKey(id), r.sessionsKey()},
		stamp(now), stamp(exp), ms(ttl), score(exp), id).Int()
	if err != nil {
		return rerr("touch session", err)
	}
	if ok == 0 {
		return ErrNotFound
	}
	return nil
}

func (r *RedisStore) DeleteSession(ctx context.Context, id string) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.sessionKey(id))
		p.ZRem(ctx, r.sessionsKey(), id)
		return nil
	})
	if err != nil {
		return rerr("delete session", err)
	}
	return nil
}

// Links are one sorted set, ticket id scored by the time it is in use
// until; ZADD GT only ever moves that time later.
func (r *RedisStore) KeepLink(ctx context.Context, id string, until time.Time) error {
	if err := r.rdb.ZAddGT(ctx, r.linksKey(), redis.Z{Score: score(until), Member: id}).Err(); err != nil {
		return rerr("keep link", err)
	}
	return nil
}

func (r *RedisStore) EndLink(ctx context.Context, id string) error {
	if err := r.rdb.ZRem(ctx, r.linksKey(), id).Err(); err != nil {
		return rerr("end link", err)
	}
	return nil
}

func (r *RedisStore) LinkAlive(ctx context.Context, id string) (bool, error) {
	until, err := r.rdb.ZScore(ctx, r.linksKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, rerr("link alive", err)
	}
	return score(r.now()) < until, nil
}

func slotValue(exp time.Time, conn string) string { return stamp(exp) + "|" + conn }

func (r *RedisStore) ClaimSlot(ctx context.Context, key, role, conn string, ttl time.Duration) (string, error) {
	now := r.now()
	prev, err := r.claimSlot.Run(ctx, r.rdb, []string{r.slotKey(key, role)},
		stamp(now), slotValue(now.Add(ttl), conn), ms(ttl)).Text()
	if err != nil {
		return "", rerr("claim slot", err)
	}
	return prev, nil
}

func (r *RedisStore) RefreshSlot(ctx context.Context, key, role, conn string, ttl time.Duration) (bool, error) {
	now := r.now()
	ok, err := r.refreshSlot.Run(ctx, r.rdb, []string{r.slotKey(key, role)},
		stamp(now), conn, slotValue(now.Add(ttl), conn), ms(ttl)).Int()
	if err != nil {
		return false, rerr("refresh slot", err)
	}
	return ok == 1, nil
}

func (r *RedisStore) Slot(ctx context.Context, key, role string) (string, error) {
	v, err := r.rdb.Get(ctx, r.slotKey(key, role)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", rerr("get slot", err)
	}
	exp, conn, ok := strings.Cut(v, "|")
	if !ok {
		return "", fmt.Errorf("%w: bad slot value in redis", ErrInternal)
	}
	t, err := parseStamp(exp)
	if err != nil {
		return "", err
	}
	if !r.now().Before(t) {
		return "", nil
	}
	return conn, nil
}

func (r *RedisStore) ReleaseSlot(ctx context.Context, key, role, conn string) error {
	if err := r.releaseSlot.Run(ctx, r.rdb, []string{r.slotKey(key, role)}, conn).Err(); err != nil {
		return rerr("release slot", err)
	}
	return nil
}

// Publish sends msg over Redis pub/sub. Delivery is at most once: messages
// only matter to connections that are live right now, and a peer that
// misses one (Redis restarting) times out or reconnects with resume.
// Order is kept for messages published one after the other: PUBLISH
// returns after Redis has queued the message to the subscribers.
func (r *RedisStore) Publish(ctx context.Context, instance string, msg []byte) error {
	if err := r.rdb.Publish(ctx, r.channel(instance), msg).Err(); err != nil {
		return rerr("publish", err)
	}
	return nil
}

// subscriberBuffer matches MemoryStore: the server's dispatcher only moves
// messages to per-connection inboxes, so it rarely falls behind.
const subscriberBuffer = 1024

// Subscribe opens one Redis connection for the instance (not one per
// signaling connection). go-redis pings it, reconnects and resubscribes
// after Redis restarts. It returns once Redis confirmed the subscription,
// so nothing published after it returns is missed. Like MemoryStore's,
// the channel is not closed: stop reading when ctx ends.
func (r *RedisStore) Subscribe(ctx context.Context, instance string) (<-chan []byte, error) {
	ps := r.rdb.Subscribe(ctx, r.channel(instance))
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, rerr("subscribe", err)
	}
	in := ps.Channel(redis.WithChannelSize(subscriberBuffer))
	out := make(chan []byte, subscriberBuffer)
	go func() {
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return // the client was closed
				}
				select {
				case out <- []byte(m.Payload):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// GC drops expired entries from the indexes behind Stats and LiveTickets;
// the keys themselves expire by TTL. The server calls it periodically.
func (r *RedisStore) GC() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	upTo := strconv.FormatFloat(score(r.now()), 'f', -1, 64)
	_, _ = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, r.liveKey(), "-inf", upTo)
		p.ZRemRangeByScore(ctx, r.sessionsKey(), "-inf", upTo)
		p.ZRemRangeByScore(ctx, r.linksKey(), "-inf", upTo)
		return nil
	})
}

func (r *RedisStore) Stats(ctx context.Context) (StoreStats, error) {
	// Live means expiry strictly after now.
	from := "(" + strconv.FormatFloat(score(r.now()), 'f', -1, 64)
	var tickets, sessions *redis.IntCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		tickets = p.ZCount(ctx, r.liveKey(), from, "+inf")
		sessions = p.ZCount(ctx, r.sessionsKey(), from, "+inf")
		return nil
	})
	if err != nil {
		return StoreStats{}, rerr("stats", err)
	}
	return StoreStats{LiveTickets: int(tickets.Val()), Sessions: int(sessions.Val())}, nil
}

// LiveTickets returns up to limit live ticket ids, those expiring soonest
// first (the store keeps them ordered by expiry, not by id).
func (r *RedisStore) LiveTickets(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	from := "(" + strconv.FormatFloat(score(r.now()), 'f', -1, 64)
	ids, err := r.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: r.liveKey(), Start: from, Stop: "+inf", ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, rerr("live tickets", err)
	}
	return ids, nil
}

// slogPrintf adapts slog to go-redis's logger interface.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("redis: " + fmt.Sprintf(format, v...))
}

// SetRedisLogger routes go-redis's own messages (reconnects, dial
// failures) to log instead of its default, unstructured stderr logger.
// go-redis keeps one process-wide logger, so main calls this once.
func SetRedisLogger(log *slog.Logger) { redis.SetLogger(slogPrintf{log}) }
