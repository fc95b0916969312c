// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package sctp

import "time"

// rackAckIsForLatestSend reports whether an acknowledgement of c, arriving
// at now, can be taken as the delivery of c's latest transmission (RFC 8985
// §6.2 step 2): one that comes sooner than the minimum RTT after a
// retransmission most likely acknowledges the original, and using the
// retransmission's send time would mark everything sent before it lost.
// The caller holds the lock.
func (a *Association) rackAckIsForLatestSend(c *chunkPayloadData, now time.Time) bool {
	return c.nSent <= 1 || a.rackMinRTT <= 0 || now.Sub(c.since) >= a.rackMinRTT
}
