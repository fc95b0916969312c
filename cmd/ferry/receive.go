package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/storedpeer"
	"github.com/ferrydev/ferry/internal/termui"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/ferrydev/ferry/internal/units"
)

func runReceive(ctx context.Context, args []string, io stdio) error {
	var pf peerFlags
	var out string
	var force, yes bool
	var maxSize config.Bytes
	fs := newFlagSet("receive", "[flags] [LINK]   (or the link in $FERRY_LINK or on stdin)", io)
	pf.register(fs, false)
	fs.StringVar(&out, "out", ".", "folder to write the received files into")
	fs.BoolVar(&force, "force", false, "overwrite existing files")
	fs.Var(&maxSize, "max-size", "refuse offers larger than this (e.g. 20GB; 0: no limit but the free space)")
	fs.BoolVar(&yes, "yes", false, "accept offers within the limits without asking (a terminal is asked above "+units.Bytes(askAbove)+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	base, tk, err := linkArg(fs, io)
	if err != nil {
		return err
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
			fmt.Fprintf(io.err, "Receiving %s, %s, into %s:\n", plural(len(m.Files), "file"), units.Bytes(m.TotalSize), out)
			for i, f := range m.Files {
				if i == 10 {
					fmt.Fprintf(io.err, "  … and %d more\n", len(m.Files)-10)
					break
				}
				fmt.Fprintf(io.err, "  %s (%s)\n", termui.Name(f.Path), units.Bytes(f.Size))
			}
		},
	}
	bar := termui.NewProgress(io.err, "receiving")
	start := time.Now()
	ask := !yes && !pf.json && isTerminal(io.in) && isTerminal(io.err)
	// With a resume state there, this run continues an interrupted one.
	_, serr := os.Lstat(filepath.Join(out, peer.StateFile(tk.ID)))
	resuming := serr == nil
	confirm := func(m *proto.Manifest) error { return checkOffer(m, out, int64(maxSize), resuming, ask, io) }
	fromStore := func() (*peer.Result, error) {
		confirm := func(m *proto.Manifest) error {
			cfg.Events.Manifest(m)
			return checkOffer(m, out, int64(maxSize), storedResuming(m, out), ask, io)
		}
		return receiveStored(ctx, base, tk, storedpeer.ReceiveOptions{Dir: out, Force: force, Confirm: confirm, Progress: js.progress(bar.Update)}, js, io)
	}
	var res *peer.Result
	isStored, err := probeStored(ctx, base, tk, io)
	switch {
	case err != nil:
	case isStored:
		res, err = fromStore()
	default:
		res, err = peer.Receive(ctx, cfg, base, tk, peer.ReceiveOptions{Dir: out, Force: force, Confirm: confirm, Progress: js.progress(bar.Update)})
		if err != nil && turnedStored(err, res) {
			// Its sender may have just stored the files instead of waiting.
			if ok, perr := probeStored(ctx, base, tk, io); perr == nil && ok {
				res, err = fromStore()
			}
		}
	}
	if sf := (*shortfall)(nil); errors.As(err, &sf) {
		err = errors.New(sf.advice())
	}
	return finish(io, js, "Received", res, err, time.Since(start))
}

// askAbove is the offer size above which a person at a terminal is asked
// before anything is written.
const askAbove = 1_000_000_000

// refusal is the receiving user's reason for refusing an offer; it counts
// as declining, which is what the sender is told.
type refusal string

func (r refusal) Error() string        { return "the offer was refused: " + string(r) }
func (r refusal) Is(target error) bool { return target == transfer.ErrDeclined }

// shortfall refuses to continue an interrupted transfer for lack of space.
// It is not a decline: the resume state and what was received stay as they
// are, and the sender waits as for a lost connection, so that freeing
// space and running the same command again continues the transfer.
type shortfall struct {
	dir        string
	need, free int64
}

func (s *shortfall) Error() string {
	return fmt.Sprintf("not enough free space in %s to continue: %s more needed, %s free", s.dir, units.Bytes(s.need), units.Bytes(s.free))
}

func (s *shortfall) Is(target error) bool { return target == transfer.ErrDiskFull }

// advice is the whole message for the user.
func (s *shortfall) advice() string {
	return fmt.Sprintf("%s; what was received so far is kept: free %s (%d bytes) more and run the same command again within %s to continue (the sender is waiting)",
		s, units.Bytes(s.need-s.free), s.need-s.free, peer.DefaultReconnectFor)
}

// checkOffer decides on an offer before anything is written: it must fit
// --max-size and the free space of the target's file system (less what an
// interrupted run of the same transfer already holds there), and above
// askAbove a person at a terminal must say yes. An interrupted transfer
// was accepted by its first run: only free space is checked again, and if
// it no longer fits it is not declined but kept for another try.
func checkOffer(m *proto.Manifest, out string, maxSize int64, resuming, ask bool, io stdio) error {
	size := units.Bytes(m.TotalSize)
	if maxSize > 0 && m.TotalSize > maxSize && !resuming {
		return refusal(fmt.Sprintf("it is %s, more than --max-size %s; nothing was received", size, units.Bytes(maxSize)))
	}
	if free, ok := freeSpace(out); ok {
		need := m.TotalSize
		for _, f := range m.Files {
			part, progress := transfer.PartNames(f.Path)
			held := allocated(filepath.Join(out, filepath.FromSlash(part)))
			if _, err := os.Lstat(filepath.Join(out, filepath.FromSlash(progress))); resuming && held == 0 && err == nil {
				// Finished by the interrupted run (its log is kept until
				// the end): the file is in place. The receiver checks that
				// it is really ours before taking it.
				held = allocated(filepath.Join(out, filepath.FromSlash(f.Path)))
			}
			need -= held
		}
		if need > free && resuming {
			return &shortfall{dir: out, need: need, free: free}
		}
		if need > free {
			return refusal(fmt.Sprintf("not enough free space in %s: %s needed, %s free; nothing was received", out, units.Bytes(need), units.Bytes(free)))
		}
	}
	if resuming || !ask || m.TotalSize <= askAbove {
		return nil
	}
	fmt.Fprintf(io.err, "Accept %s (%s) into %s? [y/N] ", size, plural(len(m.Files), "file"), out)
	line, _ := bufio.NewReader(io.in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return refusal("declined; nothing was received")
	}
	return nil
}

// linkArg takes the one link a command was given (argument, $FERRY_LINK
// or stdin) and parses it.
func linkArg(fs *flag.FlagSet, io stdio) (*url.URL, ticket.Ticket, error) {
	if fs.NArg() > 1 {
		fs.Usage()
		return nil, ticket.Ticket{}, errUsage
	}
	link, err := readLink(fs.Arg(0), io)
	if err != nil {
		return nil, ticket.Ticket{}, err
	}
	base, tk, err := ticket.ParseLink(link)
	if err != nil {
		return nil, ticket.Ticket{}, explainLinkError(err)
	}
	return base, tk, nil
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
	if isTerminal(io.in) {
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
