package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/ferrydev/ferry/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type stdio struct {
	in       io.Reader
	out, err io.Writer
	// flagSets, if set, is told about every command's flag set (the README
	// test renders the flags tables from them).
	flagSets func(cmd string, fs *flag.FlagSet)
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, io stdio) error
}

func commands() []command {
	return []command{
		{"serve", "[flags]", "run the web page, signaling and the bundled TURN relay", runServe},
		{"send", "[flags] PATH...", "send files and folders; prints a link and QR code", runSend},
		{"receive", "[flags] [LINK]", "receive from a link (argument, $FERRY_LINK or stdin)", runReceive},
		{"delete", "[LINK]", "delete files you stored with send --store (the link as argument, $FERRY_LINK or stdin)", runDelete},
		{"bench", "[flags]", "measure a transfer between two processes on loopback", runBench},
		{"turn", "[flags]", "run a standalone TURN relay for ferry servers sharing its secret", runTurn},
		{"version", "", "print the version", func(_ context.Context, _ []string, io stdio) error {
			fmt.Fprintln(io.out, "ferry", version)
			return nil
		}},
	}
}

// errUsage means the command printed its own usage message.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "ferry — send files of any size, peer to peer, end-to-end encrypted.")
	fmt.Fprintln(w, "\nUsage:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  ferry %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'ferry COMMAND --help' for a command's flags. Every flag can also be set")
	fmt.Fprintln(w, "with an environment variable: --turn-listen is FERRY_TURN_LISTEN.")
}

func run(ctx context.Context, args []string, io stdio) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(io.out)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], io)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintln(io.err, "ferry:", describe(err))
		return 1
	}
	fmt.Fprintf(io.err, "ferry: unknown command %q\n\n", args[0])
	usage(io.err)
	return 2
}

// flagSet is the part of *flag.FlagSet commands register on.
type flagSet interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
	IntVar(p *int, name string, value int, usage string)
	Var(value flag.Value, name, usage string)
}

var _ flagSet = (*flag.FlagSet)(nil)

// newFlagSet returns a flag set whose --help lists flags with their
// environment variables.
func newFlagSet(name, args string, io stdio) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.SetOutput(io.err)
	fs.Usage = func() {
		if io.flagSets != nil { // --help runs this after every flag is registered
			io.flagSets(name, fs)
			return
		}
		w := fs.Output()
		fmt.Fprintf(w, "Usage: ferry %s %s\n\nFlags (and environment variables):\n", name, args)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, r := range config.Table(fs) {
			fmt.Fprintf(tw, "  %s\t%s\tdefault %s\t%s\n", r.Flag, r.Env, r.Default, r.Usage)
		}
		tw.Flush()
	}
	return fs
}

// parseFlags parses args and the environment; usage errors are already printed.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := config.Parse(fs, args, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if errors.Is(err, config.ErrInvalid) {
			return err
		}
		return errUsage // the flag package printed the problem and usage
	}
	return nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
