package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/termui"
	"github.com/ferrydev/ferry/internal/transfer"
)

const defaultServer = "http://localhost:8080"

// peerFlags are the flags send and receive share.
type peerFlags struct {
	server    string
	relayOnly bool
	logLevel  string
}

func (p *peerFlags) register(fs flagSet) {
	fs.StringVar(&p.server, "server", defaultServer, "ferry server to use (send only; receive takes it from the link)")
	fs.BoolVar(&p.relayOnly, "relay-only", false, "only connect through the TURN relay, so the other side never learns your IP address")
	fs.StringVar(&p.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
}

func (p *peerFlags) config(io stdio, server *url.URL) *peer.Config {
	return &peer.Config{
		Server:  server,
		Options: peer.Options{RelayOnly: p.relayOnly},
		Logger:  newLogger(io.err, p.logLevel, "text"),
	}
}

func parseServer(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q must be an http(s) URL like https://ferry.example.org", s)
	}
	return u, nil
}

func runSend(ctx context.Context, args []string, io stdio) error {
	var pf peerFlags
	fs := newFlagSet("send", "[flags] PATH...", io)
	pf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	server, err := parseServer(pf.server)
	if err != nil {
		return err
	}
	files, skipped, err := transfer.Collect(fs.Args())
	for _, s := range skipped {
		fmt.Fprintf(io.err, "skipping %s (not a regular file)\n", s)
	}
	if err != nil {
		return err
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	tty := termui.IsTerminal(io.err)
	cfg := pf.config(io, server)
	cfg.Events = peer.Events{
		Link: func(link string, expires time.Time) {
			fmt.Fprintf(io.err, "Sending %s in %s.\n\nOn the other device, open this link (valid until %s):\n\n", termui.Bytes(total), plural(len(files), "file"), expires.Format("15:04"))
			fmt.Fprintln(io.out, link) // stdout carries only the link, for scripts
			if !termui.IsTerminal(io.out) {
				fmt.Fprintf(io.err, "  %s\n", link)
			}
			if tty {
				fmt.Fprintln(io.err)
				_ = termui.QR(io.err, link)
			}
			fmt.Fprintf(io.err, "\nor receive it with:  FERRY_LINK='%s' ferry receive\n\nWaiting for the receiver…\n", link)
		},
		Paired: func() { fmt.Fprintln(io.err, "The receiver opened the link.") },
		Phrase: func(w []string) {
			fmt.Fprintf(io.err, "Verification phrase: %s  (the receiver sees the same words)\n", strings.Join(w, " "))
		},
		Connected: func(path string, gen int) {
			if gen > 1 {
				fmt.Fprintf(io.err, "Reconnected (%s).\n", path)
			} else {
				fmt.Fprintf(io.err, "Connected peer to peer (%s).\n", path)
			}
		},
		Reconnecting: func(err error) { fmt.Fprintf(io.err, "\nConnection lost; reconnecting…\n") },
	}
	bar := termui.NewProgress(io.err, "sending")
	start := time.Now()
	res, err := peer.Send(ctx, cfg, files, peer.SendOptions{Progress: bar.Update})
	if err != nil {
		return err
	}
	summary(io, "Sent", res, time.Since(start))
	return nil
}

func summary(io stdio, verb string, res *peer.Result, d time.Duration) {
	rate := float64(res.Bytes) / d.Seconds()
	fmt.Fprintf(io.err, "%s %s, %s, verified, in %s (%s/s, %s).\n", verb, plural(res.Files, "file"), termui.Bytes(res.Bytes),
		d.Round(100*time.Millisecond), termui.Bytes(int64(rate)), res.Path)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
