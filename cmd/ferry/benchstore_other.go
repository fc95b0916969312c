//go:build !linux

package main

import (
	"context"
	"errors"
)

func runStoreBench(context.Context, storeBenchFlags, string, string, string, int, stdio) error {
	return errors.New("ferry bench --store needs Linux (it reads /proc)")
}
