package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/termui"
	"github.com/ferrydev/ferry/internal/ticket"
)

func runReceive(ctx context.Context, args []string, io stdio) error {
	var pf peerFlags
	var out string
	var force bool
	fs := newFlagSet("receive", "[flags] [LINK]   (or the link in $FERRY_LINK or on stdin)", io)
	pf.register(fs, false)
	fs.StringVar(&out, "out", ".", "folder to write the received files into")
	fs.BoolVar(&force, "force", false, "overwrite existing files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	link, err := readLink(fs.Arg(0), io)
	if err != nil {
		return err
	}
	base, tk, err := ticket.ParseLink(link)
	if err != nil {
		return explainLinkError(err)
	}
	cfg, err := pf.config(io, base)
	if err != nil {
		return err
	}
	js := newJSONOut(io.out, pf.json)
	cfg.Events = peer.Events{
		Phrase:       phraseEvent(io, js, "sender"),
		Connected:    connectedEvent(io, js),
		Reconnecting: reconnectingEvent(io, js),
		Manifest: func(m *proto.Manifest) {
			js.emit("manifest", map[string]any{"files": len(m.Files), "bytes": m.TotalSize})
			fmt.Fprintf(io.err, "Receiving %s, %s, into %s:\n", plural(len(m.Files), "file"), termui.Bytes(m.TotalSize), out)
			for i, f := range m.Files {
				if i == 10 {
					fmt.Fprintf(io.err, "  … and %d more\n", len(m.Files)-10)
					break
				}
				fmt.Fprintf(io.err, "  %s (%s)\n", termui.Name(f.Path), termui.Bytes(f.Size))
			}
		},
	}
	bar := termui.NewProgress(io.err, "receiving")
	start := time.Now()
	res, err := peer.Receive(ctx, cfg, base, tk, peer.ReceiveOptions{Dir: out, Force: force, Progress: js.progress(bar.Update)})
	return finish(io, js, "Received", res, err, time.Since(start))
}

// readLink takes the link from the argument, else $FERRY_LINK, else the
// first line of stdin. A link in argv is visible to other users through
// ps, so say so.
func readLink(arg string, io stdio) (string, error) {
	if arg != "" && arg != "-" {
		fmt.Fprintln(io.err, "note: a link on the command line is visible to other users of this machine (ps); prefer FERRY_LINK=… or stdin")
		return arg, nil
	}
	if v := os.Getenv("FERRY_LINK"); v != "" && arg == "" {
		return v, nil
	}
	if f, ok := io.in.(*os.File); ok && termui.IsTerminal(f) {
		fmt.Fprint(io.err, "Paste the link: ")
	}
	line, err := bufio.NewReader(io.in).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil {
			return "", errors.New("no link given (pass it as an argument, in FERRY_LINK, or on stdin)")
		}
	}
	return line, nil
}

func explainLinkError(err error) error {
	switch {
	case errors.Is(err, ticket.ErrBadSecret):
		return errors.New("the link is incomplete: its secret part is damaged or cut off; copy the whole link again")
	case errors.Is(err, ticket.ErrBadID), errors.Is(err, ticket.ErrMalformed):
		return errors.New("the link is damaged: the part after # is not a ferry ticket; copy the whole link again")
	}
	return fmt.Errorf("not a ferry link: %w", err)
}
