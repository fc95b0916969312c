package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/termui"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/ferrydev/ferry/internal/units"
	"github.com/ferrydev/ferry/turn"
)

const defaultServer = "http://localhost:8080"

// peerFlags are the flags send and receive share.
type peerFlags struct {
	server     string
	relayOnly  bool
	logLevel   string
	turnURLs   config.List
	turnSecret string
	json       bool
	token      string
	plainUDP   bool
	small      bool
	lossTol    float64
	noQUIC     bool
}

// register adds the shared flags; sender-only ones only for send (the
// receiver takes the server from the link and never needs a token).
func (p *peerFlags) register(fs flagSet, sender bool) {
	if sender {
		fs.StringVar(&p.server, "server", defaultServer, "ferry server to use")
		fs.StringVar(&p.token, "token", "", "sender token for servers that require sign-in (ask the operator; prefer FERRY_TOKEN)")
	}
	fs.BoolVar(&p.relayOnly, "relay-only", false, "only connect through the TURN relay, so the other side never learns your IP address")
	fs.StringVar(&p.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	fs.Var(&p.turnURLs, "turn", "use these TURN/STUN URLs (comma-separated, e.g. turn:turn.example.org:3478) instead of the ferry server's")
	fs.StringVar(&p.turnSecret, "turn-secret", "", "TURN REST shared secret of the --turn servers")
	fs.BoolVar(&p.json, "json", false, "print machine-readable events as JSON lines on stdout")
	fs.BoolVar(&p.plainUDP, "plain-udp", false, "send one UDP packet per system call instead of batching them (GSO/GRO on Linux); for troubleshooting")
	fs.BoolVar(&p.small, "small-packets", false, "keep 1191-byte SCTP packets even to a Go peer on the same link; for troubleshooting")
	fs.BoolVar(&p.noQUIC, "no-quic", false, "keep the transfer on the WebRTC data channel (SCTP) even when the other side could run it over QUIC; for troubleshooting")
	p.lossTol = defaultLossTolerance
	fs.Var((*shareFlag)(&p.lossTol), "loss-tolerance", "repair random packet loss up to this share without slowing down, while the path shows no queue building (0: standard SCTP and QUIC congestion control, which random loss slows to a crawl on long paths)")
}

// defaultLossTolerance: at 30 ms RTT with 0.2 % random loss each way,
// standard SCTP congestion control moved 1.2 MB/s and this 19.4 (croc 19.8,
// one TCP flow 26.4); with 1 % loss 0.5 and 14.2 (netlab BenchmarkPaths).
const defaultLossTolerance = 0.02

// shareFlag is a share between 0 and 0.2.
type shareFlag float64

func (s *shareFlag) String() string { return strconv.FormatFloat(float64(*s), 'g', -1, 64) }

func (s *shareFlag) Set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 0.2 {
		return errors.New("want a share between 0 and 0.2, like 0.02")
	}
	*s = shareFlag(f)
	return nil
}

func (p *peerFlags) config(io stdio, server *url.URL) (*peer.Config, error) {
	cfg := &peer.Config{
		Server:  server,
		Options: peer.Options{RelayOnly: p.relayOnly, PlainUDP: p.plainUDP, SmallPackets: p.small, LossTolerance: p.lossTol, NoQUIC: p.noQUIC},
		Logger:  newLogger(io.err, p.logLevel, "text"),
	}
	if p.token != "" {
		cfg.Dial.Header = http.Header{"Authorization": {"Bearer " + p.token}}
	}
	if len(p.turnURLs) > 0 {
		if p.turnSecret == "" {
			return nil, errors.New("--turn needs --turn-secret (the TURN server's shared secret)")
		}
		// A user of its own per run: relays count quotas per user.
		user, pass := turn.Credentials(p.turnSecret, "ferry-cli-"+ticket.NewID(), 12*time.Hour, time.Now())
		cfg.ICEServers = turn.ExternalICEServers(p.turnURLs, user, pass)
	}
	return cfg, nil
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
	var sf storeFlags
	fs := newFlagSet("send", "[flags] PATH...", io)
	pf.register(fs, true)
	sf.register(fs)
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
		fmt.Fprintf(io.err, "skipping %s (not a regular file)\n", termui.Name(s))
	}
	if err != nil {
		return err
	}
	if sf.store {
		return sendStored(ctx, server, pf, sf, files, io)
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	tty := termui.IsTerminal(io.err)
	cfg, err := pf.config(io, server)
	if err != nil {
		return err
	}
	js := newJSONOut(io.out, pf.json)
	cfg.Events = peer.Events{
		Link: func(link string, expires time.Time) {
			js.emit("link", map[string]any{"link": link, "expires": expires.Unix()})
			fmt.Fprintf(io.err, "Sending %s in %s.\n\nOn the other device, open this link (valid until %s):\n\n", units.Bytes(total), plural(len(files), "file"), expires.Format("15:04"))
			if !pf.json {
				fmt.Fprintln(io.out, link) // stdout carries only the link, for scripts
			}
			if pf.json || !termui.IsTerminal(io.out) {
				fmt.Fprintf(io.err, "  %s\n", link)
			}
			if tty {
				fmt.Fprintln(io.err)
				_ = termui.QR(io.err, link)
			}
			fmt.Fprintf(io.err, "\nor receive it with:  FERRY_LINK='%s' ferry receive\n\nWaiting for the receiver…\n", link)
		},
		Paired: func() {
			js.emit("paired", nil)
			fmt.Fprintln(io.err, "The receiver opened the link.")
		},
		Phrase:       phraseEvent(io, js, "receiver"),
		Connected:    connectedEvent(io, js),
		Reconnecting: reconnectingEvent(io, js),
	}
	bar := termui.NewProgress(io.err, "sending")
	start := time.Now()
	send := func(ctx context.Context) (*peer.Result, error) {
		return peer.Send(ctx, cfg, files, peer.SendOptions{Progress: js.progress(bar.Update)})
	}
	if sf.after > 0 {
		return sendOrStore(ctx, cfg, send, server, pf, sf, files, js, io)
	}
	res, err := send(ctx)
	return finish(io, js, "Sent", res, err, time.Since(start))
}

func phraseEvent(io stdio, js *jsonOut, other string) func([]string) {
	return func(w []string) {
		js.emit("phrase", map[string]any{"words": w})
		fmt.Fprintf(io.err, "Verification phrase: %s  (the %s sees the same words)\n", strings.Join(w, " "), other)
	}
}

func connectedEvent(io stdio, js *jsonOut) func(string, int) {
	return func(path string, gen int) {
		js.emit("connected", map[string]any{"path": path, "generation": gen})
		if gen > 1 {
			fmt.Fprintf(io.err, "Reconnected (%s).\n", path)
		} else {
			fmt.Fprintf(io.err, "Connected peer to peer (%s).\n", path)
		}
	}
}

func reconnectingEvent(io stdio, js *jsonOut) func(error) {
	return func(err error) {
		js.emit("reconnecting", map[string]any{"reason": describe(err)})
		fmt.Fprintf(io.err, "\nConnection lost; reconnecting…\n")
	}
}

// finish prints the outcome for people and, with --json, for programs.
func finish(io stdio, js *jsonOut, verb string, res *peer.Result, err error, d time.Duration) error {
	if err != nil {
		js.emit("error", map[string]any{"message": describe(err)})
		return err
	}
	js.emit("done", map[string]any{
		"path": res.Path, "transport": res.Transport, "bytes": res.Bytes, "sent": res.Sent, "files": res.Files,
		"generations": res.Generations, "roots": res.Roots, "seconds": d.Seconds(),
	})
	summary(io, verb, res, d)
	return nil
}

func summary(io stdio, verb string, res *peer.Result, d time.Duration) {
	rate := float64(res.Bytes) / d.Seconds()
	fmt.Fprintf(io.err, "%s %s, %s, verified, in %s (%s/s, %s, %s).\n", verb, plural(res.Files, "file"), units.Bytes(res.Bytes),
		d.Round(100*time.Millisecond), units.Bytes(int64(rate)), res.Path, res.Transport)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
