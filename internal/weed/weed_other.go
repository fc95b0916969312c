//go:build !linux

package weed

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's; the
// caller's Stop ends weed.
func dieWithParent(*exec.Cmd) {}
