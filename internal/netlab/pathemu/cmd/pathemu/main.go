// Command pathemu runs the lab's path emulator (package pathemu) in the
// current network namespace until SIGTERM or SIGINT. Each -queue flag
// configures one NFQUEUE queue:
//
//	pathemu -queue 0,delay=15ms,loss=0.002 -queue 1,delay=15ms,loss=0.002
//
// It prints one JSON line {"ready":true,...} once the queues are bound,
// one {"stats":[...]} line on SIGUSR1 and a last one when it ends.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/netlab/pathemu"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pathemu:", err)
		os.Exit(1)
	}
}

type queues []pathemu.Queue

func (q *queues) String() string { return fmt.Sprint(*q) }

func (q *queues) Set(s string) error {
	c, err := parseQueue(s)
	if err != nil {
		return err
	}
	*q = append(*q, c)
	return nil
}

// parseQueue reads "NUM[,delay=D][,loss=P][,reorder=P][,gap=D]".
func parseQueue(s string) (pathemu.Queue, error) {
	fields := strings.Split(s, ",")
	n, err := strconv.ParseUint(fields[0], 10, 16)
	if err != nil {
		return pathemu.Queue{}, fmt.Errorf("queue number %q: %w", fields[0], err)
	}
	q := pathemu.Queue{Num: uint16(n), ReorderGap: time.Millisecond}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return q, fmt.Errorf("%q: want key=value", f)
		}
		switch k {
		case "delay":
			q.Delay, err = time.ParseDuration(v)
		case "gap":
			q.ReorderGap, err = time.ParseDuration(v)
		case "loss":
			q.Loss, err = strconv.ParseFloat(v, 64)
		case "reorder":
			q.Reorder, err = strconv.ParseFloat(v, 64)
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return q, fmt.Errorf("%q: %w", f, err)
		}
	}
	return q, nil
}

func run() error {
	var qs queues
	flag.Var(&qs, "queue", "a queue: NUM[,delay=D][,loss=P][,reorder=P][,gap=D] (repeatable)")
	maxLen := flag.Uint("maxlen", 0, "packets each queue holds at most (0: 65536)")
	seed := flag.Uint64("seed", 0, "seed of the random drops and reorders (0: random)")
	flag.Parse()
	emu, err := pathemu.New(pathemu.Config{Queues: qs, MaxLen: uint32(*maxLen), Seed: *seed})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	out := json.NewEncoder(os.Stdout)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done := make(chan error, 1)
	go func() { done <- emu.Run(ctx) }()
	if err := out.Encode(map[string]any{"ready": true, "seed": emu.Seed(), "queues": []pathemu.Queue(qs)}); err != nil {
		return err
	}
	for {
		select {
		case <-usr1:
			if err := out.Encode(map[string]any{"stats": emu.Stats()}); err != nil {
				return err
			}
		case err := <-done:
			_ = out.Encode(map[string]any{"stats": emu.Stats(), "final": true})
			return err
		}
	}
}
