package transfer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
)

const (
	// maxOpenFiles bounds the partial files open at once (each takes up to
	// three descriptors); a folder of thousands of files would otherwise
	// run out of them.
	maxOpenFiles = 16
	// Written chunks are made durable and recorded every syncInterval, or
	// sooner once syncBytes are waiting: at hundreds of MB/s a second's
	// worth is a lot to fetch again after a crash.
	syncInterval = time.Second
	syncBytes    = 32 << 20
	// inFlightBytes is the credit window this receiver grants, in bytes of
	// chunks (at least proto.MinWindow chunks). It bounds what the
	// transport may hold for us when we fall behind, and so our memory:
	// half of proto.InFlightBytes, still several times the bandwidth-delay
	// product of a 30 ms path at 100 MB/s (3 MB), and, with credit going
	// back in batches of an eighth, 7 MiB in flight at the least: 240 MB/s
	// at 30 ms RTT, 70 MB/s at 100 ms.
	inFlightBytes = 8 << 20
	// On a longer path the same credit moves less: the sender waits a round
	// trip for each chunk's credit, so 8 MiB held a 100 ms path to 58 MB/s
	// (16 MiB: 82). A receiver that knows the round trip time (RTTConn)
	// grants windowRate × RTT, at least inFlightBytes and at most
	// maxInFlightBytes: 8 MiB up to 50 ms, 16 MiB at 100 ms. On a path
	// without loss the data arrives in order and is written at once, so
	// the credit costs no memory; with loss, out-of-order data up to it
	// waits in the transport, as on a short path with less.
	windowRate       = 160 << 20 // bytes per second
	maxInFlightBytes = 24 << 20
)

// RTTConn is a Conn that knows its path's round-trip time (0: not yet);
// a Receiver sizes its credit window for it.
type RTTConn interface {
	Conn
	RTT() time.Duration
}

// windowBytes is the credit window, in bytes, for a path with round-trip
// time rtt (0: unknown).
func windowBytes(rtt time.Duration) int {
	return int(min(maxInFlightBytes, max(inFlightBytes, int64(windowRate)*int64(rtt)/int64(time.Second))))
}

// Receiver writes a transfer into Dir. One Receiver lives for the whole
// transfer; Run is called once per connection.
type Receiver struct {
	// Dir is the target folder; nothing is written outside it.
	Dir string
	// Force allows overwriting existing files.
	Force bool
	// Confirm is shown the first manifest; an error declines the transfer.
	Confirm func(*proto.Manifest) error
	// Progress receives snapshots (may be nil).
	Progress func(Progress)
	// MaxBytes refuses larger transfers (0: no limit).
	MaxBytes int64
	// Window overrides the credit window in chunks (0: about 8 MiB, more
	// on a long path over an RTTConn).
	Window int
	// BeforeComplete runs when every file is verified, just before the
	// sender is told: the last moment both sides are surely still there.
	BeforeComplete func()
	// Idle bounds the wait for the sender's next message (0: DefaultIdle;
	// negative: no bound); Run then ends with ErrIdle.
	Idle time.Duration
	// Session identifies the transfer across runs (the Go peer's session
	// id). With it, a finished file's progress log is kept, sealed with the
	// session, until the whole transfer is complete, so that a run after a
	// crash finds the files the crashed one finished and does not fetch
	// them again (nor refuse them as someone else's). Empty: finished
	// files' logs are removed at once.
	Session string

	root      *os.Root
	man       *proto.Manifest
	files     []*rfile
	done      int64
	resumed   int64
	filesDone int
	flush     *flusher
	writer    *diskWriter
	complete  bool
	doneSeen  bool
	rtt       time.Duration // the current connection's (RTTConn)
	// open lists the files with open handles, least recently used first.
	open []*rfile
}

type rfile struct {
	meta    proto.File
	final   string
	part    string
	logName string
	// f, direct and log are nil while the file is closed: files are opened
	// when their first chunk arrives and closed when done or evicted.
	f      *os.File
	direct *os.File // f opened for direct I/O, or nil
	// directWrites counts chunks written with direct I/O (for tests).
	directWrites int
	log          *progressLog
	// fresh means no usable progress log: the partial file starts over.
	fresh bool
	// logValid is the valid length of the progress log found at setup,
	// -1 once it was opened (later opens append).
	logValid int64
	n        uint32
	have     *rangeSet
	root     string // from the sender's eof
	bad      map[uint32]int
	done     bool
}

// PartNames returns the names, relative to the target folder, of the
// partial file and the progress log of the file at p. They sit in the
// same folder under a short name derived from p's last element, so that
// any name the file system takes works (a suffix would push a 255-byte
// name over the limit) and the next run finds them again.
func PartNames(p string) (part, progress string) {
	dir, base := path.Split(p)
	h := sha256.Sum256([]byte(base))
	tag := ".ferry-" + hex.EncodeToString(h[:10])
	return dir + tag + ".part", dir + tag + ".progress"
}

// Manifest returns the manifest once the first connection delivered it.
func (r *Receiver) Manifest() *proto.Manifest { return r.man }

// Roots returns the verified files' BLAKE3 roots (hex), in manifest order.
func (r *Receiver) Roots() []string {
	var out []string
	for _, f := range r.files {
		if f.done {
			out = append(out, f.root)
		}
	}
	return out
}

// Complete reports whether every file was received and verified.
func (r *Receiver) Complete() bool { return r.complete }

// Run receives on one connection until the transfer completes (nil), the
// connection breaks (ErrConnLost: call Run again with a new one), or a
// fatal error.
func (r *Receiver) Run(ctx context.Context, c Conn) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r.rtt = 0
	if rc, ok := c.(RTTConn); ok {
		r.rtt = rc.RTT()
	}
	var ic *idleConn
	if idle := cmp.Or(r.Idle, DefaultIdle); idle > 0 {
		ic = newIdleConn(c, idle)
		c = ic
	}
	err := r.run(c)
	if ctx.Err() != nil && errors.Is(err, ErrConnLost) {
		err = ctx.Err()
	}
	if ic != nil && ic.stop() && errors.Is(err, ErrConnLost) {
		err = fmt.Errorf("%w: nothing arrived for %s", ErrIdle, cmp.Or(r.Idle, DefaultIdle))
	}
	if werr := r.settleWrites(); werr != nil && (err == nil || errors.Is(err, ErrConnLost)) {
		err = r.writeFailed(c, werr)
	}
	if r.flush != nil {
		if ferr := r.flush.now(); ferr != nil && err == nil {
			err = ferr
		}
	}
	return err
}

func (r *Receiver) run(c Conn) error {
	b, err := c.Recv()
	if err != nil {
		return lost(err)
	}
	m, err := proto.ParseControl(b)
	if err != nil {
		return r.fail(c, proto.CodeProtocol, err)
	}
	switch m := m.(type) {
	case *proto.Manifest:
		if err := r.setup(c, m); err != nil {
			return err
		}
	case *proto.Cancel:
		return ErrCanceled
	default:
		return r.fail(c, proto.CodeProtocol, protoErr("expected manifest, got %s", m.T()))
	}
	window := r.window()
	acc := &proto.Accept{Window: window}
	for i, f := range r.files {
		if f.have.count() > 0 {
			acc.Resume = append(acc.Resume, proto.ResumeFile{File: i, Have: f.have.ranges()})
		}
	}
	if err := sendControl(c, acc); err != nil {
		return err
	}
	r.report()
	// Credit goes back in batches; the window is always larger than a batch.
	batch := uint32(max(1, window/proto.AckBatches))
	var owed uint32
	var committed uint64
	lastReport := time.Now()
	for {
		b, err := c.Recv()
		if err != nil {
			return lost(err)
		}
		if len(b) == 0 {
			return r.fail(c, proto.CodeProtocol, protoErr("empty frame"))
		}
		switch b[0] {
		case proto.FrameChunk:
			ch, err := proto.ParseChunk(b)
			if err != nil {
				return r.fail(c, proto.CodeProtocol, err)
			}
			ok, err := r.chunk(c, ch)
			if errors.Is(err, errDone) {
				r.report()
				return nil
			}
			if err != nil {
				return err
			}
			if !ok {
				continue // bad copy: NACKed, its credit stays with the resend
			}
			owed++
			committed += uint64(len(ch.Data))
			if owed >= batch {
				if err := c.Send(proto.Ack{Credit: owed, Committed: committed}.Marshal()); err != nil {
					return lost(err)
				}
				owed = 0
			}
			if time.Since(lastReport) > 100*time.Millisecond {
				r.report()
				lastReport = time.Now()
			}
		case proto.FrameControl:
			m, err := proto.ParseControl(b)
			if err != nil {
				return r.fail(c, proto.CodeProtocol, err)
			}
			done, err := r.control(c, m)
			if err != nil || done {
				r.report()
				return err
			}
		default:
			return r.fail(c, proto.CodeProtocol, protoErr("unexpected frame type %#x", b[0]))
		}
	}
}

func (r *Receiver) window() int {
	if r.Window > 0 {
		return r.Window
	}
	return min(proto.MaxWindow, max(proto.MinWindow, windowBytes(r.rtt)/r.man.ChunkSize))
}

// fail tells the peer about a fatal error and returns it.
func (r *Receiver) fail(c Conn, code string, err error) error {
	_ = sendControl(c, &proto.Error{Code: code, Message: publicMessage(err)})
	return err
}

// publicMessage is what we tell the peer: the sentinel's text only, never
// local paths or OS errors.
func publicMessage(err error) string {
	for _, s := range []error{ErrProtocol, ErrRootMismatch, ErrFileChanged, ErrTooLarge, ErrUnsafePath, ErrExists} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "receiver error"
}

func (r *Receiver) report() {
	if r.Progress == nil || r.man == nil {
		return
	}
	r.Progress(Progress{
		Total: r.man.TotalSize, Done: r.done, Resumed: r.resumed,
		Files: len(r.files), FilesDone: r.filesDone, Time: time.Now(),
	})
}

// setup validates the manifest and opens (or resumes) every partial file.
func (r *Receiver) setup(c Conn, m *proto.Manifest) error {
	if r.man != nil {
		if !sameManifest(r.man, m) {
			return r.fail(c, proto.CodeProtocol, protoErr("the sender offered different files after reconnecting"))
		}
		return nil
	}
	if r.MaxBytes > 0 && m.TotalSize > r.MaxBytes {
		_ = sendControl(c, &proto.Decline{Reason: "too large"})
		return fmt.Errorf("%w: %d bytes offered, limit %d", ErrTooLarge, m.TotalSize, r.MaxBytes)
	}
	for _, f := range m.Files {
		if err := CheckPath(f.Path); err != nil {
			return r.fail(c, proto.CodeProtocol, err)
		}
	}
	if err := checkPartNames(m); err != nil {
		return r.fail(c, proto.CodeProtocol, err)
	}
	if r.Confirm != nil {
		if err := r.Confirm(m); err != nil {
			// Too little space to continue is not a no: like a disk that
			// fills up during the transfer, leave without a word, so that
			// the sender waits for a retry after space is freed.
			if !errors.Is(err, ErrDiskFull) {
				_ = sendControl(c, &proto.Decline{Reason: "declined"})
			}
			return err
		}
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	r.root = root
	earlier, err := r.checkTargets(m)
	if err != nil {
		// A file of ours that was changed is not a no either: the person
		// may move it away, or want it fetched again, and run again.
		if !errors.Is(err, ErrReceivedChanged) {
			_ = sendControl(c, &proto.Decline{Reason: "files exist"})
		}
		return err
	}
	// Nothing is created yet: files open when their first chunk arrives.
	files := make([]*rfile, 0, len(m.Files))
	var resumed int64
	for i, meta := range m.Files {
		f, err := r.prepare(meta, m.ChunkSize)
		if err != nil {
			return r.fail(c, proto.CodeIO, err)
		}
		if root, ok := earlier[i]; ok {
			// Finished by an earlier run: the accept claims all of it, and
			// the sender skips it (or repeats its eof, §4.6).
			f.done, f.root, f.fresh = true, root, false
			f.have.fill()
			r.filesDone++
		}
		files = append(files, f)
		for _, rg := range f.have.r {
			resumed += min(int64(rg[1])*int64(m.ChunkSize), meta.Size) - int64(rg[0])*int64(m.ChunkSize)
		}
	}
	r.man, r.files, r.resumed, r.done = m, files, resumed, resumed
	r.flush = newFlusher()
	r.writer = newDiskWriter(r.flush, m.ChunkSize)
	return nil
}

// checkTargets refuses unsafe targets and, without Force, existing files,
// before a single byte is written. It returns the roots of the files an
// earlier run of this transfer finished, by index.
func (r *Receiver) checkTargets(m *proto.Manifest) (map[int]string, error) {
	var exists, changed []string
	earlier := map[int]string{}
	for i, f := range m.Files {
		if err := checkNoSymlinks(r.root, f.Path); err != nil {
			return nil, err
		}
		fi, err := r.root.Lstat(f.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		case fi.IsDir():
			return nil, fmt.Errorf("%w: %q is a folder", ErrExists, f.Path)
		default:
			root, err := r.finishedEarlier(f, m.ChunkSize)
			switch {
			case err == nil && root != "":
				earlier[i] = root
				continue // its progress log is ours too
			case errors.Is(err, ErrReceivedChanged):
				// Ours, but no longer what we verified: fetched again only
				// with Force, never taken as it is.
				if !r.Force {
					changed = append(changed, f.Path)
				}
			case err != nil:
				return nil, err
			case !r.Force:
				exists = append(exists, f.Path)
			}
		}
		// The partial names must hold nothing but our own unfinished
		// transfer: a progress log we wrote, and a partial file only next
		// to one.
		part, logName := PartNames(f.Path)
		for _, name := range []string{part, logName} {
			if err := checkNoSymlinks(r.root, name); err != nil {
				return nil, err
			}
		}
		ours, err := r.ownLog(logName)
		if err != nil {
			return nil, err
		}
		if !ours && !r.Force {
			if _, err := r.root.Lstat(logName); err == nil {
				exists = append(exists, logName)
			} else if _, err := r.root.Lstat(part); err == nil {
				exists = append(exists, part)
			}
		}
	}
	if len(changed) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrReceivedChanged, listNames(changed))
	}
	if len(exists) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrExists, listNames(exists))
	}
	return earlier, nil
}

// listNames quotes the first few names and counts the rest.
func listNames(names []string) string {
	more := ""
	if len(names) > 3 {
		more = fmt.Sprintf(" and %d more", len(names)-3)
		names = names[:3]
	}
	return fmt.Sprintf("%q%s", names, more)
}

// finishedEarlier returns the root of the file at meta.Path if an earlier
// run of this transfer (same Session) finished it and it still holds
// exactly the verified data: its progress log is complete and sealed with
// the session and that root, and the file's chunks hash to it (read again:
// size and time stamps say nothing about an edit). It returns "" if the
// file is not one of ours, and ErrReceivedChanged if it is but was modified.
func (r *Receiver) finishedEarlier(meta proto.File, chunkSize int) (string, error) {
	if r.Session == "" {
		return "", nil
	}
	_, logName := PartNames(meta.Path)
	n := proto.ChunkCount(meta.Size, chunkSize)
	sum := newRootState(meta.Size, chunkSize, n)
	valid, st, err := readProgressLog(r.root, logName, logHeader(meta.Size, chunkSize, meta.Mtime), &rangeSet{n: n}, sum)
	if err != nil || st != logValid {
		return "", err
	}
	root := sum.hex()
	if h, ok := readSeal(r.root, logName, valid); root == "" || !ok || h != seal(r.Session, root) {
		return "", nil
	}
	f, err := r.root.Open(meta.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != meta.Size {
		return "", ErrReceivedChanged
	}
	rh := proto.NewRootHasher(meta.Size, chunkSize)
	buf := make([]byte, chunkSize)
	for k := range n {
		b := buf[:chunkLen(meta.Size, chunkSize, k)]
		if _, err := f.ReadAt(b, int64(k)*int64(chunkSize)); err != nil {
			return "", ErrReceivedChanged
		}
		h := proto.ChunkHash(b)
		rh.Add(&h)
	}
	if rh.Hex() != root {
		return "", ErrReceivedChanged
	}
	return root, nil
}

// ownLog reports whether name holds a progress log of ours (for any file).
func (r *Receiver) ownLog(name string) (bool, error) {
	fi, err := r.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	// With no header to match, any log of ours reads as stale (an empty
	// one, torn before its header, as valid).
	_, st, err := readProgressLog(r.root, name, nil, &rangeSet{}, nil)
	return st == logStale || st == logValid, err
}

// checkPartNames refuses a manifest in which one entry is another's
// partial file or progress log: both would be reported verified while only
// one exists.
func checkPartNames(m *proto.Manifest) error {
	paths := make(map[string]struct{}, len(m.Files))
	for _, f := range m.Files {
		paths[strings.ToLower(f.Path)] = struct{}{}
	}
	for _, f := range m.Files {
		part, logName := PartNames(f.Path)
		for _, name := range []string{part, logName} {
			if _, clash := paths[strings.ToLower(name)]; clash {
				return protoErr("%q would collide with the partial file of %q", name, f.Path)
			}
		}
	}
	return nil
}

// prepare reads what an earlier run recorded for one file; it creates
// nothing.
func (r *Receiver) prepare(meta proto.File, chunkSize int) (*rfile, error) {
	part, logName := PartNames(meta.Path)
	n := proto.ChunkCount(meta.Size, chunkSize)
	rf := &rfile{
		meta: meta, final: meta.Path, part: part, logName: logName, n: n,
		have: &rangeSet{n: n},
	}
	hdr := logHeader(meta.Size, chunkSize, meta.Mtime)
	valid, st, err := readProgressLog(r.root, logName, hdr, rf.have, nil)
	if err != nil {
		return nil, err
	}
	if st == logValid {
		// Records without their data (the partial file was removed) would
		// make a zero-filled file pass the root check.
		if _, err := r.root.Lstat(part); err != nil {
			st = logStale
		}
	}
	if st != logValid {
		// Data without a matching log is not trusted.
		rf.fresh = true
		rf.have.reset()
	}
	rf.logValid = valid
	return rf, nil
}

// use makes sure f's handles are open, closing the least recently used
// file's if too many are.
func (r *Receiver) use(f *rfile) error {
	if f.f != nil {
		if i := slices.Index(r.open, f); i >= 0 && i < len(r.open)-1 {
			r.open = append(slices.Delete(r.open, i, i+1), f)
		}
		return nil
	}
	if len(r.open) >= maxOpenFiles {
		// Its queued chunks must be written and recorded before it closes.
		if err := r.settleWrites(); err != nil {
			return err
		}
		if err := r.flush.now(); err != nil {
			return err
		}
		if err := r.release(r.open[0]); err != nil {
			return err
		}
	}
	if err := r.openFile(f); err != nil {
		return err
	}
	r.open = append(r.open, f)
	return nil
}

// release closes f's handles.
func (r *Receiver) release(f *rfile) error {
	if i := slices.Index(r.open, f); i >= 0 {
		r.open = slices.Delete(r.open, i, i+1)
	}
	f.closeDirect()
	var errs []error
	if f.f != nil {
		errs = append(errs, f.f.Close())
		f.f = nil
	}
	if f.log != nil {
		errs = append(errs, f.log.close())
		f.log = nil
	}
	return errors.Join(errs...)
}

// openFile opens (creating on first use) f's partial file and progress
// log; if that fails, whatever it created is removed again.
func (r *Receiver) openFile(f *rfile) (err error) {
	var created []string
	defer func() {
		if err != nil {
			for i := len(created) - 1; i >= 0; i-- {
				_ = r.root.Remove(created[i])
			}
		}
	}()
	if created, err = r.mkdirs(path.Dir(f.final)); err != nil {
		return err
	}
	var log *progressLog
	flags := os.O_RDWR | os.O_CREATE
	if f.fresh {
		log, err = createProgressLog(r.root, f.logName, logHeader(f.meta.Size, r.man.ChunkSize, f.meta.Mtime))
		if err == nil {
			created = append(created, f.logName)
		}
		flags |= os.O_TRUNC
	} else {
		log, err = reopenProgressLog(r.root, f.logName, f.logValid)
	}
	if err != nil {
		return err
	}
	pf, err := r.root.OpenFile(f.part, flags, 0o644)
	if err != nil {
		log.close()
		return err
	}
	f.f, f.log, f.direct = pf, log, openDirect(pf)
	f.fresh, f.logValid = false, -1
	return nil
}

// mkdirs creates the missing folders of dir and returns them, outermost
// first.
func (r *Receiver) mkdirs(dir string) ([]string, error) {
	if dir == "." {
		return nil, nil
	}
	var created []string
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		err := r.root.Mkdir(p, 0o755)
		if err == nil {
			created = append(created, p)
			continue
		}
		if fi, serr := r.root.Lstat(p); serr == nil && fi.IsDir() {
			continue
		}
		return created, err
	}
	return created, nil
}

// chunk verifies and writes one chunk; ok is false for a bad copy.
func (r *Receiver) chunk(c Conn, ch proto.Chunk) (bool, error) {
	if int(ch.File) >= len(r.files) {
		return false, r.fail(c, proto.CodeProtocol, protoErr("chunk for unknown file %d", ch.File))
	}
	f := r.files[ch.File]
	if ch.Index >= f.n || len(ch.Data) != chunkLen(f.meta.Size, r.man.ChunkSize, ch.Index) {
		return false, r.fail(c, proto.CodeProtocol, protoErr("chunk %d/%d out of range or wrong length", ch.File, ch.Index))
	}
	if f.have.has(ch.Index) {
		return false, r.fail(c, proto.CodeProtocol, protoErr("duplicate chunk %d/%d", ch.File, ch.Index))
	}
	if h := proto.ChunkHash(ch.Data); h != ch.Hash {
		if f.bad == nil {
			f.bad = map[uint32]int{}
		}
		f.bad[ch.Index]++
		if f.bad[ch.Index] >= proto.MaxBadCopies {
			return false, r.fail(c, proto.CodeProtocol, protoErr("chunk %d/%d failed verification %d times", ch.File, ch.Index, proto.MaxBadCopies))
		}
		if err := c.Send(proto.Nack{File: ch.File, Index: ch.Index}.Marshal()); err != nil {
			return false, lost(err)
		}
		return false, nil
	}
	if err := r.writer.failure(); err != nil {
		return false, r.writeFailed(c, err)
	}
	if err := r.use(f); err != nil {
		return false, r.writeFailed(c, err)
	}
	// Written in the background; recorded as durable once written.
	r.writer.write(f, ch.Index, ch.Hash, ch.Data)
	f.have.set(ch.Index)
	delete(f.bad, ch.Index)
	r.done += int64(len(ch.Data))
	if f.have.full() && f.root != "" {
		if err := r.finish(c, int(ch.File)); err != nil {
			return true, err
		}
		if done, err := r.maybeComplete(c); done || err != nil {
			return true, errTransferDone(err)
		}
	}
	return true, nil
}

// writeFailed turns a failed write into the receiver's error.
func (r *Receiver) writeFailed(c Conn, err error) error {
	if isDiskFull(err) {
		// Not the sender's problem and not fatal: stop here with what is
		// verified and written so far; after freeing space, resuming
		// continues.
		return fmt.Errorf("%w: %s", ErrDiskFull, r.Dir)
	}
	return r.fail(c, proto.CodeIO, err)
}

// settleWrites waits for the chunks queued for the disk. Chunks that could
// not be written are forgotten again, so that neither the progress log nor
// a resume request claims them.
func (r *Receiver) settleWrites() error {
	if r.writer == nil {
		return nil
	}
	failed, err := r.writer.wait()
	for _, fc := range failed {
		if fc.f.have.clear(fc.index) {
			r.done -= int64(fc.n)
		}
	}
	return err
}

// errDone ends the receive loop successfully from inside chunk handling.
var errDone = errors.New("transfer: complete")

func errTransferDone(err error) error {
	if err != nil {
		return err
	}
	return errDone
}

// control handles CONTROL messages; done is true when the transfer is over.
func (r *Receiver) control(c Conn, m proto.Control) (done bool, err error) {
	switch m := m.(type) {
	case *proto.EOF:
		if m.File >= len(r.files) {
			return false, r.fail(c, proto.CodeProtocol, protoErr("eof for unknown file"))
		}
		f := r.files[m.File]
		if f.done {
			// A repeat after reconnecting, or after a restart for a file an
			// earlier run finished: the sender may have missed "verified".
			if m.Root != f.root {
				return false, r.fail(c, proto.CodeRootMismatch, fmt.Errorf("%w: %q (root %s, verified %s)", ErrRootMismatch, f.meta.Path, m.Root, f.root))
			}
			return false, sendControl(c, &proto.Verified{File: m.File})
		}
		f.root = m.Root
		if f.have.full() {
			if err := r.finish(c, m.File); err != nil {
				return false, err
			}
			return r.maybeComplete(c)
		}
	case *proto.Done:
		// Chunks re-sent after a NACK may still be on their way (§4.5):
		// completion waits for the last file to verify.
		r.doneSeen = true
		return r.maybeComplete(c)
	case *proto.Cancel:
		return true, ErrCanceled
	case *proto.Error:
		return true, &PeerError{Code: m.Code, Message: m.Message}
	default:
		return false, r.fail(c, proto.CodeProtocol, protoErr("unexpected %s", m.T()))
	}
	return false, nil
}

// maybeComplete ends the transfer once the sender said done and every
// file is verified.
func (r *Receiver) maybeComplete(c Conn) (bool, error) {
	if !r.doneSeen || r.filesDone < len(r.files) {
		return false, nil
	}
	r.complete = true
	r.report()
	if r.BeforeComplete != nil {
		r.BeforeComplete()
	}
	if err := sendControl(c, &proto.Complete{}); err != nil {
		return true, err
	}
	r.ForgetFinished()
	return true, nil
}

// ForgetFinished removes the sealed progress logs of finished files: once
// the transfer is complete, or over for good (the caller drops its resume
// state), no later run needs them.
func (r *Receiver) ForgetFinished() {
	if r.root == nil || r.Session == "" {
		return
	}
	for _, f := range r.files {
		if f.done {
			_ = r.root.Remove(f.logName)
		}
	}
}

// finish checks a complete file's root and moves it into place.
func (r *Receiver) finish(c Conn, i int) error {
	f := r.files[i]
	if err := r.settleWrites(); err != nil {
		return r.writeFailed(c, err)
	}
	// Opened here too for files with no chunks left to receive (empty or
	// resumed whole).
	if err := r.use(f); err != nil {
		return r.writeFailed(c, err)
	}
	// The root covers the recorded hashes: everything must be recorded.
	if err := r.flush.now(); err != nil {
		return r.writeFailed(c, err)
	}
	sum := newRootState(f.meta.Size, r.man.ChunkSize, f.n)
	hdr := logHeader(f.meta.Size, r.man.ChunkSize, f.meta.Mtime)
	if _, _, err := readProgressLog(r.root, f.logName, hdr, &rangeSet{n: f.n}, sum); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	if got := sum.hex(); got != f.root {
		// Some recorded or received data is wrong: start this file over
		// next time rather than trusting any of it.
		r.flush.drop(f)
		_ = r.release(f)
		_ = r.root.Remove(f.part)
		_ = r.root.Remove(f.logName)
		return r.fail(c, proto.CodeRootMismatch, fmt.Errorf("%w: %q (root %s, expected %s)", ErrRootMismatch, f.meta.Path, got, f.root))
	}
	f.closeDirect()
	if err := f.f.Sync(); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	if r.Session != "" {
		// Sealed before the rename: a crash after it leaves a log that a
		// later run recognises next to the finished file (before it, the
		// partial file is simply finished again).
		if err := f.log.sealAndSync(seal(r.Session, f.root)); err != nil {
			return r.writeFailed(c, err)
		}
	}
	if err := r.release(f); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	if !r.Force {
		if _, err := r.root.Lstat(f.final); err == nil {
			return r.fail(c, proto.CodeIO, fmt.Errorf("%w: %q appeared during the transfer", ErrExists, f.final))
		}
	}
	if err := r.root.Rename(f.part, f.final); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	if f.meta.Mtime > 0 {
		t := time.UnixMilli(f.meta.Mtime)
		_ = r.root.Chtimes(f.final, t, t)
	}
	if r.Session == "" {
		_ = r.root.Remove(f.logName)
	}
	f.done = true
	r.filesDone++
	return sendControl(c, &proto.Verified{File: i})
}

// Close releases open files; partial files and progress stay for resuming.
func (r *Receiver) Close() error {
	if r.writer != nil {
		_ = r.settleWrites()
		r.writer.close()
	}
	if r.flush != nil {
		_ = r.flush.close()
	}
	for len(r.open) > 0 {
		_ = r.release(r.open[0])
	}
	if r.root != nil {
		return r.root.Close()
	}
	return nil
}

func sameManifest(a, b *proto.Manifest) bool {
	if a.ChunkSize != b.ChunkSize || a.TotalSize != b.TotalSize || len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			return false
		}
	}
	return true
}

// flusher makes written chunks durable in the background: it syncs the
// partial files and only then appends their records to the progress logs.
type flusher struct {
	mu      sync.Mutex // guards pending and bytes
	pending map[*rfile][]logRecord
	bytes   int        // data behind pending
	work    sync.Mutex // serializes sync+append
	kick    chan struct{}
	stop    chan struct{}
}

func newFlusher() *flusher {
	f := &flusher{pending: map[*rfile][]logRecord{}, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	go f.loop()
	return f
}

// add queues the record of a written chunk of n bytes.
func (f *flusher) add(rf *rfile, idx uint32, h [proto.HashLen]byte, n int) {
	f.mu.Lock()
	f.pending[rf] = append(f.pending[rf], logRecord{index: idx, hash: h})
	f.bytes += n
	due := f.bytes >= syncBytes
	f.mu.Unlock()
	if due {
		select {
		case f.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
}

// drop forgets pending records of a file that is being discarded.
func (f *flusher) drop(rf *rfile) {
	f.work.Lock()
	defer f.work.Unlock()
	f.mu.Lock()
	delete(f.pending, rf)
	f.mu.Unlock()
}

func (f *flusher) close() error {
	close(f.stop)
	return f.now()
}

func (f *flusher) loop() {
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = f.now()
		case <-f.kick:
			_ = f.now()
		case <-f.stop:
			return
		}
	}
}

// now makes everything added so far durable.
func (f *flusher) now() error {
	f.work.Lock()
	defer f.work.Unlock()
	f.mu.Lock()
	batch := f.pending
	f.pending = map[*rfile][]logRecord{}
	f.bytes = 0
	f.mu.Unlock()
	var errs []error
	for rf, recs := range batch {
		if err := rf.f.Sync(); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := rf.log.append(recs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
