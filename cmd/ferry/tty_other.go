//go:build !(linux || darwin || freebsd)

package main

import "github.com/ferrydev/ferry/internal/termui"

func isTerminal(r any) bool {
	w, ok := r.(interface{ Write([]byte) (int, error) })
	return ok && termui.IsTerminal(w)
}
