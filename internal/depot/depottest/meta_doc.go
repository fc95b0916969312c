// Package depottest holds the conformance tests every depot backend runs.
package depottest
