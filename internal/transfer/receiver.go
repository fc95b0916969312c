package transfer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
)

const (
	// PartSuffix and ProgressSuffix name the files of an unfinished transfer.
	PartSuffix     = ".ferry-part"
	ProgressSuffix = ".ferry-progress"
	// maxBadCopies of one chunk before the receiver gives up.
	maxBadCopies = 8
	// inFlightBytes is roughly how much the receiver lets the sender have
	// in flight (the credit window in bytes).
	inFlightBytes = 16 << 20
	// Written chunks are made durable and recorded every syncInterval, or
	// sooner once syncBytes are waiting: at hundreds of MB/s a second's
	// worth is a lot to fetch again after a crash.
	syncInterval = time.Second
	syncBytes    = 32 << 20
)

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
	// Window overrides the credit window in chunks (0: about 16 MiB).
	Window int
	// BeforeComplete runs when every file is verified, just before the
	// sender is told: the last moment both sides are surely still there.
	BeforeComplete func()
	// Idle bounds the wait for the sender's next message (0: DefaultIdle;
	// negative: no bound); Run then ends with ErrIdle.
	Idle time.Duration

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
}

type rfile struct {
	meta    proto.File
	final   string
	part    string
	logName string
	f       *os.File
	direct  *os.File // f opened for direct I/O, or nil
	// directWrites counts chunks written with direct I/O (for tests).
	directWrites int
	log          *progressLog
	n            uint32
	have         *bitset
	hashes       [][proto.HashLen]byte
	root         string // from the sender's eof
	bad          map[uint32]int
	done         bool
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
		if f.have.c > 0 {
			acc.Resume = append(acc.Resume, proto.ResumeFile{File: i, Have: f.have.ranges()})
		}
	}
	if err := sendControl(c, acc); err != nil {
		return err
	}
	r.report()
	// Credit goes back in batches; the window is always larger than a batch.
	batch := uint32(max(1, window/8))
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
	return min(proto.MaxWindow, max(8, inFlightBytes/r.man.ChunkSize))
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
	if r.Confirm != nil {
		if err := r.Confirm(m); err != nil {
			_ = sendControl(c, &proto.Decline{Reason: "declined"})
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
	if err := r.checkTargets(m); err != nil {
		_ = sendControl(c, &proto.Decline{Reason: "files exist"})
		return err
	}
	r.man = m
	for _, meta := range m.Files {
		f, err := r.open(meta, m.ChunkSize)
		if err != nil {
			r.man = nil
			return r.fail(c, proto.CodeIO, err)
		}
		r.files = append(r.files, f)
		for _, rg := range f.have.ranges() {
			for i := rg[0]; i < rg[1]; i++ {
				r.resumed += int64(chunkLen(meta.Size, m.ChunkSize, i))
			}
		}
	}
	r.done = r.resumed
	r.flush = newFlusher()
	r.writer = newDiskWriter(r.flush, m.ChunkSize)
	return nil
}

// checkTargets refuses unsafe targets and, without Force, existing files,
// before a single byte is written.
func (r *Receiver) checkTargets(m *proto.Manifest) error {
	var exists []string
	for _, f := range m.Files {
		if err := checkNoSymlinks(r.root, f.Path); err != nil {
			return err
		}
		fi, err := r.root.Lstat(f.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case fi.IsDir():
			return fmt.Errorf("%w: %s is a folder", ErrExists, f.Path)
		case !r.Force:
			exists = append(exists, f.Path)
		}
	}
	if len(exists) > 0 {
		more := ""
		if len(exists) > 3 {
			more = fmt.Sprintf(" and %d more", len(exists)-3)
			exists = exists[:3]
		}
		return fmt.Errorf("%w: %q%s", ErrExists, exists, more)
	}
	return nil
}

func (r *Receiver) open(meta proto.File, chunkSize int) (*rfile, error) {
	if dir := path.Dir(meta.Path); dir != "." {
		if err := r.root.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	rf := &rfile{
		meta: meta, final: meta.Path, part: meta.Path + PartSuffix, logName: meta.Path + PartSuffix + ProgressSuffix,
		n: proto.ChunkCount(meta.Size, chunkSize), bad: map[uint32]int{},
	}
	for _, name := range []string{rf.part, rf.logName} {
		if err := checkNoSymlinks(r.root, name); err != nil {
			return nil, err
		}
	}
	log, have, hashes, fresh, err := openProgressLog(r.root, rf.logName, meta.Size, chunkSize, meta.Mtime, rf.n)
	if err != nil {
		return nil, err
	}
	flags := os.O_RDWR | os.O_CREATE
	if fresh {
		flags |= os.O_TRUNC // data without a matching log is not trusted
	}
	f, err := r.root.OpenFile(rf.part, flags, 0o644)
	if err != nil {
		log.close()
		return nil, err
	}
	rf.f, rf.log, rf.have, rf.hashes = f, log, have, hashes
	rf.direct = openDirect(f)
	return rf, nil
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
		f.bad[ch.Index]++
		if f.bad[ch.Index] >= maxBadCopies {
			return false, r.fail(c, proto.CodeProtocol, protoErr("chunk %d/%d failed verification %d times", ch.File, ch.Index, maxBadCopies))
		}
		if err := c.Send(proto.Nack{File: ch.File, Index: ch.Index}.Marshal()); err != nil {
			return false, lost(err)
		}
		return false, nil
	}
	if err := r.writer.failure(); err != nil {
		return false, r.writeFailed(c, err)
	}
	// Written in the background; recorded as durable once written.
	r.writer.write(f, ch.Index, ch.Hash, ch.Data)
	f.have.set(ch.Index)
	f.hashes[ch.Index] = ch.Hash
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
			return false, nil // a repeat after reconnecting
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
	return true, sendControl(c, &proto.Complete{})
}

// finish checks a complete file's root and moves it into place.
func (r *Receiver) finish(c Conn, i int) error {
	f := r.files[i]
	if err := r.settleWrites(); err != nil {
		return r.writeFailed(c, err)
	}
	rh := proto.NewRootHasher(f.meta.Size, r.man.ChunkSize)
	for k := range f.hashes {
		rh.Add(&f.hashes[k])
	}
	if got := rh.Hex(); got != f.root {
		// Some recorded or received data is wrong: start this file over
		// next time rather than trusting any of it.
		r.flush.drop(f)
		f.closeDirect()
		_ = f.f.Close()
		_ = f.log.close()
		_ = r.root.Remove(f.part)
		_ = r.root.Remove(f.logName)
		return r.fail(c, proto.CodeRootMismatch, fmt.Errorf("%w: %s (root %s, expected %s)", ErrRootMismatch, f.meta.Path, got, f.root))
	}
	if err := r.flush.now(); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	f.closeDirect()
	if err := f.f.Sync(); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	if err := f.f.Close(); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	if !r.Force {
		if _, err := r.root.Lstat(f.final); err == nil {
			return r.fail(c, proto.CodeIO, fmt.Errorf("%w: %s appeared during the transfer", ErrExists, f.final))
		}
	}
	if err := r.root.Rename(f.part, f.final); err != nil {
		return r.fail(c, proto.CodeIO, err)
	}
	if f.meta.Mtime > 0 {
		t := time.UnixMilli(f.meta.Mtime)
		_ = r.root.Chtimes(f.final, t, t)
	}
	_ = f.log.close()
	_ = r.root.Remove(f.logName)
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
	for _, f := range r.files {
		if !f.done {
			f.closeDirect()
			f.f.Close()
			f.log.close()
		}
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
	err     error
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
