package peer

// WithStripes makes every generation stripe over n connections, even
// between two Go peers (which never stripe otherwise).
func WithStripes(o Options, n int) Options {
	o.stripes = n
	return o
}
