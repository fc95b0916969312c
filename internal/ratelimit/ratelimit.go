// Package ratelimit keeps per-client token buckets, bounded in memory, or
// shared between instances through Redis (NewShared).
package ratelimit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxKeys bounds memory under an address-spraying attack; when full, idle
// buckets are dropped first.
const maxKeys = 100_000

// Limiter limits events per client address. IPv6 clients are grouped by /64,
// since one host usually owns a whole /64.
type Limiter struct {
	every time.Duration
	burst int
	now   func() time.Time
	// shared, if set, decides; the local buckets stand in when it fails.
	shared *shared

	mu   sync.Mutex
	keys map[netip.Addr]*entry
}

type entry struct {
	lim  *rate.Limiter
	seen time.Time
}

// New allows burst events at once and then one per every. every <= 0
// disables limiting.
func New(every time.Duration, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{every: every, burst: burst, now: now, keys: make(map[netip.Addr]*entry)}
}

func key(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a.Unmap()
}

// Allow reports whether one more event from a is allowed now.
func (l *Limiter) Allow(a netip.Addr) bool {
	if l == nil || l.every <= 0 {
		return true
	}
	now := l.now()
	k := key(a)
	if l.shared != nil {
		if ok, err := l.shared.allow(k, now, l.every, l.burst); err == nil {
			return ok
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[k]
	if !ok {
		if len(l.keys) >= maxKeys {
			l.pruneLocked(now)
		}
		e = &entry{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.keys[k] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// pruneLocked drops buckets that have refilled completely (idle long enough
// that forgetting them changes nothing), or all of them if none has.
func (l *Limiter) pruneLocked(now time.Time) {
	full := l.every * time.Duration(l.burst)
	for k, e := range l.keys {
		if now.Sub(e.seen) >= full {
			delete(l.keys, k)
		}
	}
	if len(l.keys) >= maxKeys {
		clear(l.keys)
	}
}

// Prune drops idle buckets; call it periodically.
func (l *Limiter) Prune() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(l.now())
}
