// Package redismeta keeps the metadata of stored transfers (depot.Meta) in
// Redis, shared by several ferry instances: a download verified on one is
// counted once for all, and quotas hold across them.
//
// Every operation that reads and then writes is one Lua script, which Redis
// runs atomically, so instances never interleave inside one.
//
// Key layout (P = prefix, DefaultPrefix unless configured):
//
//	P t:<id>   hash {j: the record as created (JSON), state, parts, used, limit};
//	           expires at the record's Expires + Grace
//	P ledger   hash id -> "<size>|<owner>": what each record counts against quotas
//	P exp      zset id -> when P t:<id> expires (Unix ms; +inf without Expires)
//	P usage    hash "total" and "o:<owner>" -> bytes: the sums of the ledger
//
// Usage counters change only together with the ledger, in the same script:
// Create adds the entry and the bytes, and the entry is removed, and its
// bytes subtracted, by whichever script first finds it with no record left
// (Delete, or the reaping of expired records) or marks its record gone
// (SetGone) — once, however many instances try. The janitor deletes records soon after Expires; the Redis
// expiry is a safety net for what it misses (an instance down for days).
// Redis drops such a record on its own, but not its ledger entry: Create
// (a bounded batch, and the id it creates) and List (all) reap entries past
// their expiry whose record is gone, by Redis's own clock. Until then the
// bytes still count, so a quota errs on refusing, never on admitting.
//
// Sizes and quotas are compared as Lua numbers, exact up to 2^53 bytes.
// Scripts touch keys of other records than the ones they name (reaping), so
// this needs one Redis (or a primary with replicas), not Redis Cluster.
package redismeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix namespaces the keys, apart from the signaling store's.
const DefaultPrefix = "ferry:stored:"

// DefaultGrace is how long a record stays in Redis after it expired, for
// the janitor to delete it together with its data.
const DefaultGrace = 7 * 24 * time.Hour

// reapBatch bounds the expired records one Create reaps.
const reapBatch = 100

// Options configure a Meta.
type Options struct {
	// URL is redis://[user:pass@]host:port/db, rediss://… or unix:///path.
	URL string
	// Prefix of every key (DefaultPrefix if empty).
	Prefix string
	// Grace after a record's Expires until Redis drops it (DefaultGrace if 0).
	Grace time.Duration
}

// Meta is a depot.Meta in Redis.
type Meta struct {
	rdb    *redis.Client
	prefix string
	grace  time.Duration

	create, addPart, setReady, count, gone, del, reap *redis.Script
}

var _ depot.Meta = (*Meta)(nil)

// New connects to Redis at url with the default options.
func New(ctx context.Context, url string) (*Meta, error) {
	return NewWith(ctx, Options{URL: url})
}

// NewWith connects to Redis and checks that it answers, so that a
// misconfigured server fails at start-up rather than at the first upload.
func NewWith(ctx context.Context, o Options) (*Meta, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redismeta: redis URL: %w", err)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	m := &Meta{
		rdb:      redis.NewClient(opt),
		prefix:   o.Prefix,
		grace:    o.Grace,
		create:   redis.NewScript(luaLedger + luaCreate),
		addPart:  redis.NewScript(luaAddPart),
		setReady: redis.NewScript(luaSetReady),
		count:    redis.NewScript(luaCount),
		gone:     redis.NewScript(luaLedger + luaGone),
		del:      redis.NewScript(luaLedger + luaDelete),
		reap:     redis.NewScript(luaLedger + luaReap),
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.rdb.Ping(pctx).Err(); err != nil {
		_ = m.rdb.Close()
		return nil, fmt.Errorf("redismeta: redis at %s: %w", opt.Addr, err)
	}
	return m, nil
}

// Close closes the Redis client.
func (m *Meta) Close() error { return m.rdb.Close() }

func (m *Meta) recordKey(id string) string { return m.prefix + "t:" + id }

// ledgerKeys are the keys of the ledger scripts after the record's.
func (m *Meta) ledgerKeys() []string {
	return []string{m.prefix + "ledger", m.prefix + "exp", m.prefix + "usage"}
}

func rerr(op string, err error) error { return fmt.Errorf("redismeta: redis %s: %w", op, err) }

// Scripts return small integer codes, mapped to the sentinel errors here.
const (
	codeNotFound = 0
	codeOK       = 1
	codeExists   = 2
	codeQuota    = 3
	codePart     = 4
	codeState    = 5
	codeUsedUp   = 6
)

func codeErr(code int64) error {
	switch code {
	case codeOK:
		return nil
	case codeNotFound:
		return depot.ErrNotFound
	case codeExists:
		return depot.ErrExists
	case codeQuota:
		return depot.ErrQuota
	case codePart:
		return depot.ErrPart
	case codeState:
		return depot.ErrState
	case codeUsedUp:
		return depot.ErrUsedUp
	}
	return fmt.Errorf("redismeta: script returned %d", code)
}

// luaLedger: the ledger's functions. KEYS[1] is the record, KEYS[2..4]
// ledger, exp, usage; ARGV[1] the prefix of record keys. Counters change
// by the size's decimal string (HINCRBY), never through a Lua number,
// which Redis might format with an exponent.
const luaLedger = `
-- Redis before 7 replicates a script that read TIME only by its effects.
if redis.replicate_commands then redis.replicate_commands() end
local function uncount(v)
  local sep = string.find(v, '|', 1, true)
  local size = string.sub(v, 1, sep - 1)
  if size == '0' then return end
  local owner = 'o:' .. string.sub(v, sep + 1)
  if redis.call('HINCRBY', KEYS[4], owner, '-' .. size) == 0 then redis.call('HDEL', KEYS[4], owner) end
  if redis.call('HINCRBY', KEYS[4], 'total', '-' .. size) == 0 then redis.call('HDEL', KEYS[4], 'total') end
end
local function drop(id)
  local v = redis.call('HGET', KEYS[2], id)
  if v then
    uncount(v)
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[3], id)
end
local function reap(limit)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
  local n = 0
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', ARGV[1] .. id) == 0 then
      drop(id)
      n = n + 1
    end
  end
  return #ids, n
end
`

// ARGV: record prefix, id, json, owner, size, per-owner quota, total quota,
// expiry (Unix ms, "" for none), state, parts, used, limit, reap batch.
const luaCreate = `
reap(tonumber(ARGV[13]))
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
-- A ledger entry without its record: an earlier transfer of this id that
-- Redis expired. It goes before the new one counts.
drop(ARGV[2])
local size = tonumber(ARGV[5])
local owner = 'o:' .. ARGV[4]
local perOwner, total = tonumber(ARGV[6]), tonumber(ARGV[7])
if perOwner > 0 and tonumber(redis.call('HGET', KEYS[4], owner) or '0') + size > perOwner then return 3 end
if total > 0 and tonumber(redis.call('HGET', KEYS[4], 'total') or '0') + size > total then return 3 end
redis.call('HSET', KEYS[1], 'j', ARGV[3], 'state', ARGV[9], 'parts', ARGV[10], 'used', ARGV[11], 'limit', ARGV[12])
if ARGV[8] == '' then
  redis.call('ZADD', KEYS[3], '+inf', ARGV[2])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[8])
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[5] .. '|' .. ARGV[4])
if ARGV[5] ~= '0' then
  redis.call('HINCRBY', KEYS[4], owner, ARGV[5])
  redis.call('HINCRBY', KEYS[4], 'total', ARGV[5])
end
return 1`

// KEYS: record. ARGV: n. Compare-and-set of parts.
const luaAddPart = `
local v = redis.call('HMGET', KEYS[1], 'state', 'parts')
if not v[1] then return 0 end
local n, parts = tonumber(ARGV[1]), tonumber(v[2])
if n >= 0 and n < parts then return 1 end
if n ~= parts then return 4 end
if v[1] ~= 'uploading' then return 5 end
redis.call('HINCRBY', KEYS[1], 'parts', 1)
return 1`

// KEYS: record.
const luaSetReady = `
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return 0 end
if s ~= 'uploading' then return 5 end
redis.call('HSET', KEYS[1], 'state', 'ready')
return 1`

// KEYS: record. Returns {code, used}.
const luaCount = `
local v = redis.call('HMGET', KEYS[1], 'state', 'used', 'limit')
if not v[1] then return {0, 0} end
local used, limit = tonumber(v[2]), tonumber(v[3])
if v[1] ~= 'ready' then return {5, used} end
if limit > 0 and used >= limit then return {6, used} end
return {1, redis.call('HINCRBY', KEYS[1], 'used', 1)}`

// ARGV: record prefix, id. The ledger entry goes (its bytes freed) when
// the record turns gone; a later Delete or Redis expiry finds none.
const luaGone = `
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return 0 end
if s ~= 'gone' then
  redis.call('HSET', KEYS[1], 'state', 'gone')
  drop(ARGV[2])
end
return 1`

// ARGV: record prefix, id.
const luaDelete = `
redis.call('DEL', KEYS[1])
drop(ARGV[2])
return 1`

// ARGV: record prefix, batch. Returns {entries due, entries dropped}.
const luaReap = `
local due, dropped = reap(tonumber(ARGV[2]))
return {due, dropped}`

func (m *Meta) Create(ctx context.Context, t depot.Transfer, q depot.Quota) error {
	if t.ID == "" || t.Size < 0 {
		return fmt.Errorf("redismeta: bad record (id %q, size %d)", t.ID, t.Size)
	}
	js, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("redismeta: %w", err)
	}
	expiry := ""
	if !t.Expires.IsZero() {
		expiry = strconv.FormatInt(t.Expires.Add(m.grace).UnixMilli(), 10)
	}
	keys := append([]string{m.recordKey(t.ID)}, m.ledgerKeys()...)
	code, err := m.create.Run(ctx, m.rdb, keys,
		m.prefix+"t:", t.ID, js, t.Owner, t.Size, q.PerOwner, q.Total, expiry,
		string(t.State), t.Parts, t.Used, t.Limit, reapBatch).Int64()
	if err != nil {
		return rerr("create", err)
	}
	return codeErr(code)
}

func (m *Meta) Get(ctx context.Context, id string) (depot.Transfer, error) {
	v, err := m.rdb.HMGet(ctx, m.recordKey(id), "j", "state", "parts", "used").Result()
	if err != nil {
		return depot.Transfer{}, rerr("get", err)
	}
	return decode(id, v)
}

// decode makes a record of HMGET j state parts used.
func decode(id string, v []any) (depot.Transfer, error) {
	var t depot.Transfer
	js, ok := v[0].(string)
	if !ok {
		return t, depot.ErrNotFound
	}
	state, _ := v[1].(string)
	parts, err1 := strconv.Atoi(fmt.Sprint(v[2]))
	used, err2 := strconv.Atoi(fmt.Sprint(v[3]))
	if err := errors.Join(json.Unmarshal([]byte(js), &t), err1, err2); err != nil {
		return t, fmt.Errorf("redismeta: record %q: %w", id, err)
	}
	t.State, t.Parts, t.Used = depot.State(state), parts, used
	return t, nil
}

func (m *Meta) AddPart(ctx context.Context, id string, n int) error {
	code, err := m.addPart.Run(ctx, m.rdb, []string{m.recordKey(id)}, n).Int64()
	if err != nil {
		return rerr("add part", err)
	}
	return codeErr(code)
}

func (m *Meta) SetReady(ctx context.Context, id string) error {
	code, err := m.setReady.Run(ctx, m.rdb, []string{m.recordKey(id)}).Int64()
	if err != nil {
		return rerr("set ready", err)
	}
	return codeErr(code)
}

func (m *Meta) CountDownload(ctx context.Context, id string) (int, error) {
	v, err := m.count.Run(ctx, m.rdb, []string{m.recordKey(id)}).Int64Slice()
	if err != nil {
		return 0, rerr("count download", err)
	}
	if len(v) != 2 {
		return 0, fmt.Errorf("redismeta: count script returned %v", v)
	}
	return int(v[1]), codeErr(v[0])
}

func (m *Meta) SetGone(ctx context.Context, id string) error {
	keys := append([]string{m.recordKey(id)}, m.ledgerKeys()...)
	code, err := m.gone.Run(ctx, m.rdb, keys, m.prefix+"t:", id).Int64()
	if err != nil {
		return rerr("set gone", err)
	}
	return codeErr(code)
}

func (m *Meta) Delete(ctx context.Context, id string) error {
	keys := append([]string{m.recordKey(id)}, m.ledgerKeys()...)
	code, err := m.del.Run(ctx, m.rdb, keys, m.prefix+"t:", id).Int64()
	if err != nil {
		return rerr("delete", err)
	}
	return codeErr(code)
}

// listBatch is how many records List asks for at once.
const listBatch = 256

// List first reaps every ledger entry whose record Redis expired, then
// walks the ledger. A record created or deleted meanwhile may or may not be
// seen; none is seen twice.
func (m *Meta) List(ctx context.Context, fn func(depot.Transfer) error) error {
	// The reaping script names no record of its own.
	keys := append([]string{m.prefix + "t:"}, m.ledgerKeys()...)
	for {
		v, err := m.reap.Run(ctx, m.rdb, keys, m.prefix+"t:", listBatch).Int64Slice()
		if err != nil {
			return rerr("reap", err)
		}
		// Due entries whose record is still there (a clock step) are not
		// dropped; stop when a batch dropped nothing.
		if len(v) != 2 || v[0] < listBatch || v[1] == 0 {
			break
		}
	}
	seen := map[string]bool{} // HSCAN may return an entry twice
	var cursor uint64
	for {
		// Field, value, field, value… (HSCAN NOVALUES needs Redis 7.4.)
		kv, next, err := m.rdb.HScan(ctx, m.prefix+"ledger", cursor, "", listBatch).Result()
		if err != nil {
			return rerr("list", err)
		}
		var batch []string
		for i := 0; i < len(kv); i += 2 {
			if id := kv[i]; !seen[id] {
				seen[id] = true
				batch = append(batch, id)
			}
		}
		if err := m.listBatch(ctx, batch, fn); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

func (m *Meta) listBatch(ctx context.Context, ids []string, fn func(depot.Transfer) error) error {
	if len(ids) == 0 {
		return nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err := m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, m.recordKey(id), "j", "state", "parts", "used")
		}
		return nil
	})
	if err != nil {
		return rerr("list", err)
	}
	for i, id := range ids {
		t, err := decode(id, cmds[i].Val())
		if errors.Is(err, depot.ErrNotFound) {
			continue // deleted or expired meanwhile
		}
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
