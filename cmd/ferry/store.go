package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/stored"
	"github.com/ferrydev/ferry/internal/storedpeer"
	"github.com/ferrydev/ferry/internal/termui"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/ferrydev/ferry/internal/units"
)

// storeFlags are send's flags for stored transfers.
type storeFlags struct {
	store     bool
	after     time.Duration
	expire    lifetime
	downloads int
}

// lifetime is a duration that also takes whole days ("7d").
type lifetime time.Duration

func (l *lifetime) String() string { return time.Duration(*l).String() }

func (l *lifetime) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 {
			return errors.New("want a number of days like 7d, or a duration like 36h")
		}
		*l = lifetime(time.Duration(d) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errors.New("want a number of days like 7d, or a duration like 36h")
	}
	*l = lifetime(d)
	return nil
}

func (s *storeFlags) register(fs flagSet) {
	fs.BoolVar(&s.store, "store", false, "upload the files, end-to-end encrypted, so the link works when you are gone (the server keeps only ciphertext)")
	fs.Var((*durationFlag)(&s.after), "store-after", "if nobody opened the link after this long (e.g. 10m), upload the files instead, end-to-end encrypted, so the same link works when you are gone")
	fs.Var(&s.expire, "expire", "with --store: how long the server keeps the files, e.g. 3d or 36h (default: the server's, usually 7 days)")
	fs.IntVar(&s.downloads, "downloads", 1, "with --store: how many people may download the files (0: unlimited, if the server allows it)")
}

func (s *storeFlags) options() storedpeer.UploadOptions {
	d := s.downloads
	return storedpeer.UploadOptions{Expire: time.Duration(s.expire), Downloads: &d, Agent: "ferry/" + version}
}

// durationFlag is a time.Duration flag for the flagSet interface.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return errors.New("want a duration like 10m")
	}
	*d = durationFlag(v)
	return nil
}

// sendOrStore sends live, and if nobody opened the link within --store-after
// stores the files under the same link instead.
func sendOrStore(ctx context.Context, cfg *peer.Config, send func(context.Context) (*peer.Result, error), server *url.URL,
	pf peerFlags, sf storeFlags, files []transfer.SourceFile, js *jsonOut, io stdio) error {
	live, stop := context.WithCancel(ctx)
	defer stop()
	storable := make(chan *storedpeer.Live, 1)
	paired := make(chan struct{})
	var once sync.Once
	cfg.Events.Storable = func(tk ticket.Ticket, token string) { storable <- &storedpeer.Live{Ticket: tk, Token: token} }
	onPaired := cfg.Events.Paired
	cfg.Events.Paired = func() {
		once.Do(func() { close(paired) })
		if onPaired != nil {
			onPaired()
		}
	}
	type result struct {
		res *peer.Result
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		res, err := send(live)
		done <- result{res, err}
	}()
	// Live to the end: the send finished, or a receiver came.
	sent := func(r result) error { return finish(io, js, "Sent", r.res, r.err, time.Since(start)) }
	var lv *storedpeer.Live
	select {
	case lv = <-storable:
	case r := <-done:
		return sent(r)
	}
	timer := time.NewTimer(sf.after)
	defer timer.Stop()
	select {
	case r := <-done:
		return sent(r)
	case <-paired:
		return sent(<-done)
	case <-timer.C:
	}
	select {
	case <-paired: // just in time: stay live
		return sent(<-done)
	default:
	}
	stop()
	<-done
	fmt.Fprintf(io.err, "\nNobody opened the link within %s: storing the files on the server instead (end-to-end encrypted); the same link will work.\n", sf.after)
	up, err := storeFiles(ctx, server, pf, sf, files, lv, js, io)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.err, "Stored %s, %s.\n", plural(up.Files, "file"), units.Bytes(up.Bytes))
	printStoredLink(io, js, pf.json, true, up)
	return nil
}

// storeFiles uploads files (under a live link's id if live is set) with a
// progress bar, reports a failure as an event, and keeps the token that
// lets its sender delete it.
func storeFiles(ctx context.Context, server *url.URL, pf peerFlags, sf storeFlags, files []transfer.SourceFile,
	live *storedpeer.Live, js *jsonOut, io stdio) (*storedpeer.Uploaded, error) {
	o := sf.options()
	o.Files, o.StateDir, o.Live = files, uploadStateDir(), live
	bar := termui.NewProgress(io.err, "uploading")
	o.Progress = js.progress(bar.Update)
	up, err := (&storedpeer.Client{Base: server, Token: pf.token}).Upload(ctx, o)
	if err != nil {
		js.emit("error", map[string]any{"message": describe(err)})
		return nil, err
	}
	if err := rememberSent(server, up); err != nil {
		fmt.Fprintf(io.err, "note: could not keep the token to delete it later (%v)\n", err)
	}
	return up, nil
}

// sentRecord is what `ferry delete` needs of a stored transfer this user
// sent: no secret, only the id and the write token (0600).
type sentRecord struct {
	Server     string `json:"server"`
	ID         string `json:"id"`
	WriteToken string `json:"writeToken"`
	Expires    int64  `json:"expires"`
}

func sentDir() string {
	if d := uploadStateDir(); d != "" {
		return filepath.Join(filepath.Dir(d), "sent")
	}
	return ""
}

// rememberSent keeps the write token of a stored transfer, so that its
// sender can delete it later.
func rememberSent(server *url.URL, up *storedpeer.Uploaded) error {
	dir := sentDir()
	if dir == "" {
		return nil
	}
	b, err := json.Marshal(sentRecord{Server: server.String(), ID: up.ID, WriteToken: up.WriteToken, Expires: up.Expires.Unix()})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, up.ID+".json"), b, 0o600)
}

// runDelete deletes a stored transfer its user sent from this account.
func runDelete(ctx context.Context, args []string, io stdio) error {
	fs := newFlagSet("delete", "[LINK]   (or the link in $FERRY_LINK or on stdin)", io)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	base, tk, err := linkArg(fs, io)
	if err != nil {
		return err
	}
	p := filepath.Join(sentDir(), tk.ID+".json")
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("this user did not store that link with ferry send --store on this machine (no %s), so it cannot delete it", p)
	}
	var rec sentRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.ID != tk.ID {
		return fmt.Errorf("%s is damaged", p)
	}
	err = (&storedpeer.Client{Base: base}).Delete(ctx, rec.ID, rec.WriteToken)
	if err != nil && !errors.Is(err, storedpeer.ErrNotFound) {
		return err
	}
	_ = os.Remove(p)
	if errors.Is(err, storedpeer.ErrNotFound) {
		fmt.Fprintln(io.err, "It was already gone from the server (expired, downloaded as often as allowed, or deleted).")
		return nil
	}
	fmt.Fprintln(io.err, "Deleted: the server no longer holds those files, and the link no longer works.")
	return nil
}

// uploadStateDir keeps what a rerun of an interrupted upload needs (it
// holds the link's secret: the folder is the user's own).
func uploadStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "ferry", "uploads")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "ferry", "uploads")
	}
	return ""
}

// sendStored uploads files and prints the link.
func sendStored(ctx context.Context, server *url.URL, pf peerFlags, sf storeFlags, files []transfer.SourceFile, io stdio) error {
	js := newJSONOut(io.out, pf.json)
	var total int64
	for _, f := range files {
		total += f.Size
	}
	fmt.Fprintf(io.err, "Storing %s in %s on %s, end-to-end encrypted…\n", units.Bytes(total), plural(len(files), "file"), server.Host)
	start := time.Now()
	up, err := storeFiles(ctx, server, pf, sf, files, nil, js, io)
	if errors.Is(err, storedpeer.ErrInterrupted) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w; run the same command again to continue where it stopped", err)
	}
	if err != nil {
		return err
	}
	d := time.Since(start)
	if up.Resumed > 0 {
		fmt.Fprintf(io.err, "Continued an interrupted upload (%s were already stored).\n", units.Bytes(up.Resumed))
	}
	fmt.Fprintf(io.err, "Stored %s, %s, in %s (%s/s).\n", plural(up.Files, "file"), units.Bytes(up.Bytes), d.Round(100*time.Millisecond),
		units.Bytes(int64(float64(up.Bytes-up.Resumed)/d.Seconds())))
	printStoredLink(io, js, pf.json, false, up)
	return nil
}

// printStoredLink shows a stored transfer's link; again: it was shown
// already (a live link that was stored), so stdout does not repeat it.
func printStoredLink(io stdio, js *jsonOut, jsonMode, again bool, up *storedpeer.Uploaded) {
	downloads := "unlimited downloads"
	if up.Downloads > 0 {
		downloads = plural(up.Downloads, "download")
	}
	js.emit("stored", map[string]any{"link": up.Link, "expires": up.Expires.Unix(), "downloads": up.Downloads, "bytes": up.Bytes, "files": up.Files})
	fmt.Fprintf(io.err, "\nThe link works until %s, for %s:\n\n", up.Expires.Format("2006-01-02 15:04"), downloads)
	if !jsonMode && !again {
		fmt.Fprintln(io.out, up.Link)
	}
	if jsonMode || again || !termui.IsTerminal(io.out) {
		fmt.Fprintf(io.err, "  %s\n", up.Link)
	}
	if termui.IsTerminal(io.err) {
		fmt.Fprintln(io.err)
		_ = termui.QR(io.err, up.Link)
	}
	fmt.Fprintf(io.err, "\nor receive it with:  FERRY_LINK='%s' ferry receive\nDelete it earlier with: FERRY_LINK='%s' ferry delete\n", up.Link, up.Link)
}

// probeStored asks whether the link is a stored transfer; false with a nil
// error means a live one. While its sender is still uploading (a live link
// being turned into a stored one) it waits, up to storedWait.
func probeStored(ctx context.Context, base *url.URL, tk ticket.Ticket, io stdio) (bool, error) {
	read, err := stored.ReadToken(tk.Secret[:])
	if err != nil {
		return false, err
	}
	c := &storedpeer.Client{Base: base}
	deadline := time.Now().Add(storedWait)
	told := false
	for {
		st, err := c.Probe(ctx, tk.ID, read)
		switch {
		case errors.Is(err, storedpeer.ErrNotFound), errors.Is(err, storedpeer.ErrUnsupported):
			return false, nil
		case err != nil:
			return false, err
		case st.State == "ready":
			return true, nil
		case time.Now().After(deadline):
			return false, storedpeer.ErrNotReady
		}
		if !told {
			fmt.Fprintln(io.err, "The sender is storing the files on the server for you; waiting for the upload to finish…")
			told = true
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// storedWait bounds the wait for a stored transfer still being uploaded.
const storedWait = 30 * time.Minute

// turnedStored says whether a live receive that failed this way may have
// met a link whose sender just stored it instead (nothing was received).
func turnedStored(err error, res *peer.Result) bool {
	return (res == nil || res.Bytes == 0) &&
		(errors.Is(err, sigclient.ErrUnknown) || errors.Is(err, sigclient.ErrPeerGone) || errors.Is(err, sigclient.ErrExpired))
}

// receiveStored downloads a stored transfer as a live receive would.
func receiveStored(ctx context.Context, base *url.URL, tk ticket.Ticket, o storedpeer.ReceiveOptions, js *jsonOut, io stdio) (*peer.Result, error) {
	c := &storedpeer.Client{Base: base}
	fmt.Fprintln(io.err, "The files were stored on the server for you (end-to-end encrypted); downloading.")
	r, err := c.Receive(ctx, tk, o)
	if err != nil {
		return nil, err
	}
	if !r.Counted && r.CountErr != nil {
		fmt.Fprintf(io.err, "note: every file is verified, but the server did not count this download (%s)\n", describe(r.CountErr))
	}
	return &peer.Result{Path: "stored", Bytes: r.Bytes, Files: r.Files, Roots: r.Roots}, nil
}

// storedResuming says whether an interrupted run left partial files of m.
func storedResuming(m *proto.Manifest, out string) bool {
	for _, f := range m.Files {
		_, progress := transfer.PartNames(f.Path)
		if _, err := os.Lstat(filepath.Join(out, filepath.FromSlash(progress))); err == nil {
			return true
		}
	}
	return false
}
