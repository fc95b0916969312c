package peer

import "sync/atomic"

// WithStripes makes every generation stripe over n connections, even
// between two Go peers (which never stripe otherwise).
func WithStripes(o Options, n int) Options {
	o.stripes = n
	return o
}

// WithRelayStripes makes stripe connections relay-only; the main one may
// still go direct.
func WithRelayStripes(o Options) Options {
	o.relayStripes = true
	return o
}

// WithStripeLost closes stripe k of generation gen once it wrote after
// chunks.
func WithStripeLost(o Options, gen, k, after int) Options {
	var n atomic.Int32
	o.stripeWrote = func(g, s int) bool {
		return g == gen && s == k && int(n.Add(1)) == after
	}
	return o
}
