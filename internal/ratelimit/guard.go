package ratelimit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Guard throttles failures, such as wrong passwords: each client address
// has a budget of failures that refills slowly, and all clients together
// have one more, so guesses spread over many addresses are bounded too.
// Asking costs nothing and successes cost nothing; only Fail spends. While
// a budget is spent, callers must refuse the attempt without checking it,
// or a correct guess would still show.
type Guard struct {
	perClient *Limiter
	now       func() time.Time

	mu     sync.Mutex
	global *rate.Limiter
}

// NewGuard allows burst failures per client address, refilled at one per
// every, and globalBurst failures in all, refilled at one per globalEvery.
func NewGuard(every time.Duration, burst int, globalEvery time.Duration, globalBurst int, now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	return &Guard{
		perClient: New(every, burst, now),
		now:       now,
		global:    rate.NewLimiter(rate.Every(globalEvery), globalBurst),
	}
}

// Wait returns how long a must wait before its next attempt: 0 if it may
// try now.
func (g *Guard) Wait(a netip.Addr) time.Duration {
	now := g.now()
	g.mu.Lock()
	global := waitFor(g.global, now)
	g.mu.Unlock()
	return max(global, g.perClient.wait(a, now))
}

// Fail spends one failure of a's budget and of the global one. It reports
// whether either budget is now spent (worth a log line once).
func (g *Guard) Fail(a netip.Addr) (spent bool) {
	now := g.now()
	g.mu.Lock()
	g.global.AllowN(now, 1)
	spent = waitFor(g.global, now) > 0
	g.mu.Unlock()
	g.perClient.Allow(a)
	return spent || g.perClient.wait(a, now) > 0
}

// Prune drops idle per-client budgets; call it periodically.
func (g *Guard) Prune() { g.perClient.Prune() }

// waitFor is how long until l has a whole token.
func waitFor(l *rate.Limiter, now time.Time) time.Duration {
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.Limit()) * float64(time.Second))
}

// wait is how long until a has a whole token, without spending one.
func (l *Limiter) wait(a netip.Addr, now time.Time) time.Duration {
	if l == nil || l.every <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key(a)]
	if !ok {
		return 0
	}
	return waitFor(e.lim, now)
}
