// Package scaletest holds tests of ferry at scale, and nothing else:
// several `ferry serve` instances sharing a Redis (multi_instance_test.go),
// a signaling load test against one instance running as a separate
// process (load_test.go, also `make loadtest`), and a static check of the
// multi-instance Docker Compose example in deploy/ (compose_test.go).
package scaletest
