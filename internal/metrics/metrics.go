// Package metrics exposes ferry's Prometheus metrics on its own registry.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sources are read when Prometheus scrapes, so they need no bookkeeping.
type Sources struct {
	Connections      func() float64 // open signaling connections
	Allocations      func() float64 // live TURN allocations
	AllocationsCap   func() float64 // the relay's cap on allocations in all (0: none)
	RelayedBytes     func() float64 // bytes relayed by TURN
	DroppedBytes     func() float64 // bytes dropped by the TURN bandwidth cap
	RefusedBytes     func() float64 // bytes refused: to the host's own addresses, not an allocation
	AuditWriteErrors func() float64
	// Stored transfers, as the janitor last counted them.
	StoredTransfers func() float64
	StoredBytes     func() float64
}

// Metrics are the counters and histograms ferry updates as things happen.
type Metrics struct {
	reg *prometheus.Registry

	TicketsCreated prometheus.Counter
	TicketsJoined  prometheus.Counter
	TicketsExpired prometheus.Counter
	Rejected       *prometheus.CounterVec // reason: rate, policy, unknown, expired, used, connections
	WrongKey       prometheus.Counter
	Resumed        prometheus.Counter
	Transfers      *prometheus.CounterVec // outcome: direct, relay, failed, canceled
	TransferBytes  *prometheus.CounterVec // path
	Pairing        prometheus.Histogram
	Relay          prometheus.Histogram
	TURNDenied     prometheus.Counter
	TURNAuthFailed *prometheus.CounterVec // reason: malformed, expired, link_gone
	TURNQuota      *prometheus.CounterVec // cap: ticket, address, global
	TURNRevoked    prometheus.Counter

	StoredCreated       prometheus.Counter
	StoredUploads       prometheus.Counter
	StoredUploadBytes   prometheus.Counter
	StoredDownloads     *prometheus.CounterVec // outcome: started, verified, aborted
	StoredRemoved       *prometheus.CounterVec // reason: stored_deleted, stored_expired, stored_used_up
	StoredRefused       *prometheus.CounterVec // reason: the API's error code
	StoredJanitorRuns   prometheus.Counter
	StoredBackendErrors *prometheus.CounterVec // backend: blobs, meta, internal
}

// New registers everything on a fresh registry.
func New(src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		reg: reg,
		TicketsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_tickets_created_total", Help: "Links created by senders."}),
		TicketsJoined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_tickets_joined_total", Help: "Links opened (consumed) by receivers."}),
		TicketsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_tickets_expired_total", Help: "Links that expired before anyone opened them."}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_tickets_rejected_total", Help: "Create or join attempts refused, by reason (connections: over the per-address cap of signaling connections)."}, []string{"reason"}),
		WrongKey: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_wrong_key_total", Help: "Key confirmations that failed (link burned)."}),
		Resumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_sessions_resumed_total", Help: "Signaling reconnections with a resume session."}),
		Transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_transfers_total", Help: "Finished transfers as senders report them: direct, relay, failed or canceled."}, []string{"outcome"}),
		TransferBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_transfer_bytes_total", Help: "Bytes of completed transfers, by path."}, []string{"path"}),
		Pairing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ferry_signaling_pairing_seconds", Help: "From a receiver's join to both peers paired.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		Relay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ferry_signaling_relay_seconds", Help: "Time a signaling message spends in the server (across instances).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}),
		TURNDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_turn_permissions_denied_total", Help: "Relay permissions refused (internal addresses)."}),
		TURNAuthFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_turn_auth_failures_total", Help: "TURN credentials refused, by reason: malformed, expired, link_gone (their link no longer exists)."}, []string{"reason"}),
		TURNQuota: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_turn_quota_refusals_total", Help: "Allocations refused, by the cap that refused them: ticket (per link), address (per client IP), global."}, []string{"cap"}),
		TURNRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_turn_allocations_revoked_total", Help: "Allocations closed because their link no longer exists."}),
		StoredCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_stored_created_total", Help: "Stored transfers created (uploads begun)."}),
		StoredUploads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_stored_uploads_total", Help: "Stored transfers whose upload completed."}),
		StoredUploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_stored_upload_bytes_total", Help: "Ciphertext bytes stored by uploads."}),
		StoredDownloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_stored_downloads_total", Help: "Downloads of stored transfers: started, verified (counted) or aborted."}, []string{"outcome"}),
		StoredRemoved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_stored_removed_total", Help: "Stored transfers removed, by reason: deleted by the sender, expired, used up."}, []string{"reason"}),
		StoredRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_stored_refused_total", Help: "Requests to store refused, by reason (forbidden, sign_in_required, rate_limited, too_large, quota)."}, []string{"reason"}),
		StoredJanitorRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_stored_janitor_runs_total", Help: "Runs of the janitor that removes expired and used-up stored transfers."}),
		StoredBackendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_stored_backend_errors_total", Help: "Errors of the storage backends, by backend: blobs, meta, internal."}, []string{"backend"}),
	}
	for _, c := range []prometheus.Collector{m.StoredCreated, m.StoredUploads, m.StoredUploadBytes, m.StoredDownloads,
		m.StoredRemoved, m.StoredRefused, m.StoredJanitorRuns, m.StoredBackendErrors} {
		f(c)
	}
	for _, c := range []prometheus.Collector{m.TicketsCreated, m.TicketsJoined, m.TicketsExpired, m.Rejected, m.WrongKey,
		m.Resumed, m.Transfers, m.TransferBytes, m.Pairing, m.Relay, m.TURNDenied, m.TURNAuthFailed, m.TURNQuota, m.TURNRevoked} {
		f(c)
	}
	gauge := func(name, help string, fn func() float64) {
		if fn != nil {
			f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
		}
	}
	counter := func(name, help string, fn func() float64) {
		if fn != nil {
			f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
		}
	}
	gauge("ferry_signaling_connections", "Open signaling WebSockets on this instance.", src.Connections)
	gauge("ferry_turn_allocations", "Live TURN allocations.", src.Allocations)
	gauge("ferry_turn_allocations_limit", "The relay's cap on live allocations in all (0: none).", src.AllocationsCap)
	counter("ferry_turn_relayed_bytes_total", "Bytes relayed by the bundled TURN server.", src.RelayedBytes)
	counter("ferry_turn_dropped_bytes_total", "Bytes dropped by the TURN bandwidth cap.", src.DroppedBytes)
	counter("ferry_turn_refused_bytes_total", "Bytes not relayed: aimed at one of the host's own addresses, not at an allocation.", src.RefusedBytes)
	counter("ferry_audit_write_errors_total", "Audit records that could not be written.", src.AuditWriteErrors)
	gauge("ferry_stored_transfers", "Stored transfers kept (as the janitor last counted them).", src.StoredTransfers)
	gauge("ferry_stored_bytes", "Ciphertext bytes of stored transfers kept (as the janitor last counted them).", src.StoredBytes)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Pre-create label values so dashboards see zeros, not gaps.
	for _, o := range []string{"direct", "relay", "failed", "canceled"} {
		m.Transfers.WithLabelValues(o)
	}
	for _, c := range []string{"ticket", "address", "global"} {
		m.TURNQuota.WithLabelValues(c)
	}
	for _, o := range []string{"started", "verified", "aborted"} {
		m.StoredDownloads.WithLabelValues(o)
	}
	for _, b := range []string{"blobs", "meta", "internal"} {
		m.StoredBackendErrors.WithLabelValues(b)
	}
	for _, r := range []string{"malformed", "expired", "link_gone"} {
		m.TURNAuthFailed.WithLabelValues(r)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// Registry exposes the registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
