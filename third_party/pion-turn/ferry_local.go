// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package turn

import "github.com/pion/turn/v5/internal/allocation"

// LocalDeliverer is implemented by a relay socket (from a
// RelayAddressGenerator) that delivers packets for another relay of the
// same server without the kernel: the server gives it its allocation's
// delivery function when the allocation is created (ferry patch,
// internal/allocation/ferry_local.go).
type LocalDeliverer = allocation.LocalDeliverer
