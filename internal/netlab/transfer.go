package netlab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Transfer is a `ferry send` and a `ferry receive` (Go peers) running in two
// namespaces.
type Transfer struct {
	lab              *Lab
	Sender, Receiver *Proc
	// Out is the receiver's target folder.
	Out  string
	file string
	sum  [32]byte
}

// TransferSpec says who sends what to whom.
type TransferSpec struct {
	Bin      string
	Server   string // the ferry server's base URL
	From, To *NS
	// File is sent; Sum is its SHA-256 for the final check.
	File string
	Sum  [32]byte
	// SendArgs and RecvArgs are extra flags (--relay-only, --turn ...).
	SendArgs, RecvArgs []string
	// Env is added to both peers' environment (e.g. PION_LOG_DEBUG=ice),
	// SendEnv and RecvEnv to one side's (e.g. FERRY_CPUPROFILE).
	Env, SendEnv, RecvEnv []string
}

// StartTransfer starts the sender, waits for its link and starts the
// receiver with it (in $FERRY_LINK, as a careful user would).
func (l *Lab) StartTransfer(ctx context.Context, s TransferSpec) *Transfer {
	l.t.Helper()
	out := l.t.TempDir()
	send := append([]string{s.Bin, "send", "--json", "--log-level", "debug", "--server", s.Server}, s.SendArgs...)
	sp := s.From.Start("ferry send", Env(l.t.TempDir(), slices.Concat(s.Env, s.SendEnv)...), append(send, s.File)...)
	link, _, err := WaitEvent(ctx, sp, 0, "link", nil)
	if err != nil {
		l.t.Fatal(err)
	}
	recv := append([]string{s.Bin, "receive", "--json", "--log-level", "debug", "--out", out}, s.RecvArgs...)
	rp := s.To.Start("ferry receive", Env(l.t.TempDir(), slices.Concat([]string{"FERRY_LINK=" + link.Link}, s.Env, s.RecvEnv)...), recv...)
	return &Transfer{lab: l, Sender: sp, Receiver: rp, Out: out, file: filepath.Base(s.File), sum: s.Sum}
}

// Result is what a finished transfer reported.
type Result struct {
	// SendDone and RecvDone are the peers' done events.
	SendDone, RecvDone Event
	// Send and Recv are all their events.
	Send, Recv []Event
	// Path is the path of the last connection ("direct" or "relay"), as
	// both peers reported it.
	Path string
	// Connected is when the receiver's first connection came up; Elapsed
	// runs from then to its done event.
	Connected time.Time
	Elapsed   time.Duration
	// MBps is the file's size in MB (10^6 bytes) per second of Elapsed.
	MBps float64
	// Reconnecting counts both peers' reconnecting events.
	Reconnecting int
}

// Finish waits for both peers' done events and checks the received file's
// SHA-256 and that both peers agree on the path.
func (tr *Transfer) Finish(ctx context.Context) (*Result, error) {
	rd, _, err := WaitEvent(ctx, tr.Receiver, 0, "done", nil)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w\nthe lab's processes:\n%s", err, tr.lab.Describe())
	}
	sd, _, err := WaitEvent(ctx, tr.Sender, 0, "done", nil)
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	for _, p := range []*Proc{tr.Sender, tr.Receiver} {
		if err := p.Wait(ctx); err != nil {
			return nil, fmt.Errorf("%s exited with %v after done\n%s", p.Name, err, p.Describe())
		}
	}
	got, err := FileSum(filepath.Join(tr.Out, tr.file))
	if err != nil {
		return nil, err
	}
	if got != tr.sum {
		return nil, fmt.Errorf("received file's SHA-256 %x differs from the sent file's %x", got, tr.sum)
	}
	if entries, _ := os.ReadDir(tr.Out); len(entries) != 1 {
		return nil, fmt.Errorf("receiver left %d entries in its folder (partial files, resume state?)", len(entries))
	}
	if sd.Path != rd.Path {
		return nil, fmt.Errorf("sender reports path %q, receiver %q", sd.Path, rd.Path)
	}
	res := &Result{SendDone: sd, RecvDone: rd, Send: Events(tr.Sender), Recv: Events(tr.Receiver), Path: rd.Path}
	for _, e := range res.Recv {
		if e.Event == "connected" && res.Connected.IsZero() {
			res.Connected = e.Time
		}
	}
	for _, e := range append(res.Send, res.Recv...) {
		if e.Event == "reconnecting" {
			res.Reconnecting++
		}
	}
	res.Elapsed = rd.Time.Sub(res.Connected)
	if res.Elapsed > 0 {
		res.MBps = float64(rd.Bytes) / 1e6 / res.Elapsed.Seconds()
	}
	return res, nil
}
