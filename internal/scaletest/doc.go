// Package scaletest holds tests of ferry at scale, and nothing else:
// several `ferry serve` instances sharing a Redis (multi_instance_test.go)
// and a signaling load test against one instance running as a separate
// process (load_test.go, also `make loadtest`).
package scaletest
