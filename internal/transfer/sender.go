package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
)

// DefaultMaxChunk bounds chunks between Go peers; browsers get 64 KiB
// messages anyway (the peer's max message size decides).
const DefaultMaxChunk = 1 << 20

// SourceFile is one file offered by a Sender.
type SourceFile struct {
	// Path is the relative, '/'-separated name the receiver sees.
	Path string
	// Local is where the file is read from.
	Local string
	Size  int64
	Mtime time.Time
}

// Sender sends Files. One Sender lives for the whole transfer; Run is
// called once per connection.
type Sender struct {
	Files []SourceFile
	// MaxChunk bounds the chunk size (0: DefaultMaxChunk); the peer's
	// maximum message size bounds it too.
	MaxChunk int
	Agent    string
	Progress func(Progress)
	// Mangle, if set, may modify a chunk after it was hashed, before it is
	// sent the first time: tests use it to check that corruption is caught.
	Mangle func(file int, index uint32, data []byte)

	man      *proto.Manifest
	files    []*sfile
	sources  sources
	frames   *freeList
	complete bool
	// Sent counts chunk bytes put on the wire, resends included, over all
	// connections (so tests and benchmarks can see what resuming saved).
	sent int64
	mu   sync.Mutex
}

type sfile struct {
	src SourceFile
	// seen is the file as the transfer found it; every open must find it
	// unchanged.
	seen fs.FileInfo
	// fh is nil while the file is closed; users counts the readers holding
	// it. Both are guarded by sources.mu.
	fh       *os.File
	users    int
	n        uint32
	hashes   [][proto.HashLen]byte
	known    *bitset
	verified bool
}

// Manifest returns the manifest (after the first Run).
func (s *Sender) Manifest() *proto.Manifest { return s.man }

// Complete reports whether the receiver confirmed every file.
func (s *Sender) Complete() bool { return s.complete }

// SentBytes is the number of chunk bytes sent so far, resends included.
func (s *Sender) SentBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// Root returns the root of file i once all its hashes are known.
func (s *Sender) Root(i int) string {
	f := s.files[i]
	if !f.known.full() {
		return ""
	}
	rh := proto.NewRootHasher(f.src.Size, s.man.ChunkSize)
	for k := range f.hashes {
		rh.Add(&f.hashes[k])
	}
	return rh.Hex()
}

func (s *Sender) prepare(c Conn) error {
	if s.man != nil {
		if c.MaxMessage() < s.man.ChunkSize+proto.ChunkHeaderLen {
			return fmt.Errorf("%w: the new connection takes smaller messages than the transfer's chunks", ErrProtocol)
		}
		return nil
	}
	maxChunk := s.MaxChunk
	if maxChunk <= 0 {
		maxChunk = DefaultMaxChunk
	}
	cs := min(maxChunk, c.MaxMessage()-64)
	if cs < proto.MinChunkSize {
		return fmt.Errorf("%w: the peer's messages are too small (%d bytes)", ErrProtocol, c.MaxMessage())
	}
	m := &proto.Manifest{Version: proto.Version, Agent: s.Agent, ChunkSize: cs}
	// Files are opened only when read (a few at a time), but a file that
	// went away or changed since it was listed is better reported before
	// the receiver sees the offer.
	files := make([]*sfile, 0, len(s.Files))
	for _, src := range s.Files {
		fi, err := statSource(src)
		if err != nil {
			return err
		}
		n := proto.ChunkCount(src.Size, cs)
		files = append(files, &sfile{src: src, seen: fi, n: n, hashes: make([][proto.HashLen]byte, n), known: newBitset(n)})
		var mtime int64
		if !src.Mtime.IsZero() {
			mtime = src.Mtime.UnixMilli()
		}
		m.Files = append(m.Files, proto.File{Path: src.Path, Size: src.Size, Mtime: mtime})
		m.TotalSize += src.Size
	}
	s.man, s.files = m, files
	// Enough for the producer's queue, the frame being sent and a resend.
	s.frames = newFreeList(24, proto.ChunkHeaderLen+cs)
	return nil
}

// Close releases the files.
func (s *Sender) Close() error {
	s.sources.closeAll()
	return nil
}

// incoming is one frame (or error) from the receiver.
type incoming struct {
	ctl  proto.Control
	ack  *proto.Ack
	nack *proto.Nack
	err  error
}

func readLoop(c Conn, out chan<- incoming, stop <-chan struct{}) {
	for {
		b, err := c.Recv()
		var in incoming
		switch {
		case err != nil:
			in.err = lost(err)
		case len(b) == 0:
			in.err = protoErr("empty frame")
		case b[0] == proto.FrameAck:
			a, perr := proto.ParseAck(b)
			in.ack, in.err = &a, perr
		case b[0] == proto.FrameNack:
			n, perr := proto.ParseNack(b)
			in.nack, in.err = &n, perr
		case b[0] == proto.FrameControl:
			in.ctl, in.err = proto.ParseControl(b)
		default:
			in.err = protoErr("unexpected frame type %#x", b[0])
		}
		select {
		case out <- in:
		case <-stop:
			return
		}
		if in.err != nil {
			return
		}
	}
}

// Run sends on one connection until the receiver confirms everything
// (nil), the connection breaks (ErrConnLost: call Run again with a new
// one), or a fatal error.
func (s *Sender) Run(ctx context.Context, c Conn) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err := s.run(ctx, c)
	if ctx.Err() != nil && errors.Is(err, ErrConnLost) {
		err = ctx.Err()
	}
	return err
}

func (s *Sender) run(ctx context.Context, c Conn) error {
	if err := s.prepare(c); err != nil {
		return err
	}
	if err := sendControl(c, s.man); err != nil {
		return err
	}
	in := make(chan incoming, 256)
	stopRead := make(chan struct{})
	defer close(stopRead)
	go readLoop(c, in, stopRead)

	var acc *proto.Accept
	for acc == nil {
		m := <-in
		if m.err != nil {
			return m.err
		}
		switch v := m.ctl.(type) {
		case *proto.Accept:
			acc = v
		case *proto.Decline:
			return ErrDeclined
		case *proto.Cancel:
			return ErrCanceled
		case *proto.Error:
			return &PeerError{Code: v.Code, Message: v.Message}
		default:
			return s.fail(c, protoErr("expected accept"))
		}
	}
	if err := proto.CheckAccept(acc, s.man); err != nil {
		return s.fail(c, protoErr("%v", err))
	}
	have := make([]*bitset, len(s.files))
	for i, f := range s.files {
		have[i] = newBitset(f.n)
	}
	for _, rf := range acc.Resume {
		if rf.File >= len(s.files) || !have[rf.File].setRanges(rf.Have) {
			return s.fail(c, protoErr("resume ranges out of bounds"))
		}
	}
	// A file the receiver verified earlier but no longer claims whole (it
	// was changed there after a restart and is fetched again) is sent
	// again; skipping it would leave the receiver waiting for it.
	for i, f := range s.files {
		if f.verified && !have[i].full() {
			f.verified = false
		}
	}

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan item, 16)
	var pwg sync.WaitGroup
	pwg.Add(1)
	// The producer gets a snapshot of which hashes are known, so it never
	// reads state the sending loop writes.
	known := make([]*bitset, len(s.files))
	for i, f := range s.files {
		known[i] = f.known.clone()
	}
	go func() {
		defer pwg.Done()
		s.produce(pctx, have, known, work)
	}()
	defer pwg.Wait()
	defer cancel()

	credit := acc.Window
	var resend []proto.Nack
	var committed int64
	base := s.resumedBytes(have)
	produced := false
	doneSent := false
	lastReport := time.Now()
	s.report(base, 0)
	for {
		// Take whatever arrived without blocking, then decide what to send.
		var m incoming
		var got bool
		var workC <-chan item
		if credit > 0 && !produced && len(resend) == 0 {
			workC = work
		}
		if len(resend) > 0 {
			select {
			case m = <-in:
				got = true
			default:
			}
		} else {
			select {
			case m = <-in:
				got = true
			case it, ok := <-workC:
				if !ok {
					produced = true
					if !doneSent {
						if err := sendControl(c, &proto.Done{}); err != nil {
							return err
						}
						doneSent = true
					}
					continue
				}
				sent, err := s.handleItem(c, it)
				if err != nil {
					return err
				}
				if sent {
					credit--
				}
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if got {
			if m.err != nil {
				return m.err
			}
			switch {
			case m.ack != nil:
				credit += int(m.ack.Credit)
				committed = int64(m.ack.Committed)
				if time.Since(lastReport) > 100*time.Millisecond {
					s.report(base, committed)
					lastReport = time.Now()
				}
			case m.nack != nil:
				resend = append(resend, *m.nack)
			default:
				done, err := s.control(c, m.ctl)
				if err != nil {
					return err
				}
				if done {
					s.report(base, s.man.TotalSize-base)
					return nil
				}
			}
			continue
		}
		if len(resend) > 0 {
			n := resend[0]
			resend = resend[1:]
			if err := s.resendChunk(c, n); err != nil {
				return err
			}
		}
	}
}

// handleItem records what the producer read and sends it; sent reports
// whether a chunk went out (and so used a credit).
func (s *Sender) handleItem(c Conn, it item) (sent bool, err error) {
	if it.err != nil {
		return false, s.fail(c, it.err)
	}
	f := s.files[it.file]
	if it.eof {
		return false, sendControl(c, &proto.EOF{File: it.file, Root: s.Root(it.file)})
	}
	if f.known.has(it.index) && f.hashes[it.index] != it.hash {
		if it.frame != nil {
			s.frames.put(it.frame[:0])
		}
		return false, s.fail(c, fmt.Errorf("%w: %q was modified", ErrFileChanged, f.src.Local))
	}
	f.hashes[it.index] = it.hash
	f.known.set(it.index)
	if it.frame == nil {
		return false, nil // a chunk the receiver has; only its hash was needed
	}
	err = s.sendChunk(c, it.file, it.index, it.frame, 0)
	s.frames.put(it.frame[:0])
	return err == nil, err
}

func (s *Sender) resumedBytes(have []*bitset) int64 {
	var b int64
	for i, h := range have {
		for _, r := range h.ranges() {
			for k := r[0]; k < r[1]; k++ {
				b += int64(chunkLen(s.files[i].src.Size, s.man.ChunkSize, k))
			}
		}
	}
	return b
}

func (s *Sender) report(base, committed int64) {
	if s.Progress == nil {
		return
	}
	done := 0
	for _, f := range s.files {
		if f.verified {
			done++
		}
	}
	s.Progress(Progress{Total: s.man.TotalSize, Done: base + committed, Resumed: base, Files: len(s.files), FilesDone: done, Time: time.Now()})
}

func (s *Sender) fail(c Conn, err error) error {
	code := proto.CodeProtocol
	switch {
	case errors.Is(err, ErrFileChanged):
		code = proto.CodeFileChanged
	case errors.Is(err, ErrConnLost):
		return err
	case !errors.Is(err, ErrProtocol):
		code = proto.CodeIO
	}
	_ = sendControl(c, &proto.Error{Code: code, Message: publicMessage(err)})
	return err
}

func (s *Sender) control(c Conn, m proto.Control) (bool, error) {
	switch v := m.(type) {
	case *proto.Verified:
		if v.File >= len(s.files) {
			return false, s.fail(c, protoErr("verified for unknown file"))
		}
		s.files[v.File].verified = true
	case *proto.Complete:
		s.complete = true
		return true, nil
	case *proto.Cancel:
		return true, ErrCanceled
	case *proto.Error:
		return true, &PeerError{Code: v.Code, Message: v.Message}
	default:
		return false, s.fail(c, protoErr("unexpected %s", m.T()))
	}
	return false, nil
}

func (s *Sender) sendChunk(c Conn, file int, index uint32, frame []byte, flags byte) error {
	frame[1] = flags
	if s.Mangle != nil && flags&proto.FlagResend == 0 {
		s.Mangle(file, index, frame[proto.ChunkHeaderLen:])
	}
	if err := c.Send(frame); err != nil {
		return lost(err)
	}
	s.mu.Lock()
	s.sent += int64(len(frame) - proto.ChunkHeaderLen)
	s.mu.Unlock()
	return nil
}

// resendChunk reads a NACKed chunk again; its hash must not have changed.
func (s *Sender) resendChunk(c Conn, n proto.Nack) error {
	if int(n.File) >= len(s.files) || n.Index >= s.files[n.File].n || !s.files[n.File].known.has(n.Index) {
		return s.fail(c, protoErr("nack for a chunk never sent"))
	}
	f := s.files[n.File]
	frame, h, err := s.readChunk(f, int(n.File), n.Index)
	if err != nil {
		return s.fail(c, err)
	}
	if h != f.hashes[n.Index] {
		return s.fail(c, fmt.Errorf("%w: %q was modified", ErrFileChanged, f.src.Local))
	}
	err = s.sendChunk(c, int(n.File), n.Index, frame, proto.FlagResend)
	s.frames.put(frame[:0])
	return err
}

// freeList keeps chunk buffers for reuse. Not a sync.Pool: every GC empties
// those, pion allocates enough to collect often, and re-zeroing megabyte
// buffers showed up in profiles.
type freeList struct {
	c    chan []byte
	size int
}

func newFreeList(n, size int) *freeList { return &freeList{c: make(chan []byte, n), size: size} }

func (f *freeList) get() []byte {
	select {
	case b := <-f.c:
		return b[:0]
	default:
		return make([]byte, 0, f.size)
	}
}

func (f *freeList) put(b []byte) {
	if b == nil || cap(b) < f.size {
		return
	}
	select {
	case f.c <- b[:0]:
	default:
	}
}

// readChunk reads and hashes chunk index of f into a pooled CHUNK frame.
func (s *Sender) readChunk(f *sfile, file int, index uint32) ([]byte, [proto.HashLen]byte, error) {
	n := chunkLen(f.src.Size, s.man.ChunkSize, index)
	frame := s.frames.get()
	if cap(frame) < proto.ChunkHeaderLen+n {
		frame = make([]byte, 0, proto.ChunkHeaderLen+n)
	}
	frame = frame[:proto.ChunkHeaderLen+n]
	data := frame[proto.ChunkHeaderLen:]
	fh, err := s.sources.acquire(f)
	if err != nil {
		s.frames.put(frame[:0])
		return nil, [proto.HashLen]byte{}, err
	}
	_, err = fh.ReadAt(data, int64(index)*int64(s.man.ChunkSize))
	s.sources.release(f)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %q got shorter", ErrFileChanged, f.src.Local)
		}
		s.frames.put(frame[:0])
		return nil, [proto.HashLen]byte{}, err
	}
	h := proto.ChunkHash(data)
	proto.AppendChunkHeader(frame[:0], 0, uint32(file), index, &h)
	return frame, h, nil
}

// item is one unit of work from the producer: a chunk frame to send, the
// hash of a chunk the receiver already has (no frame), the end of a file,
// or an error.
type item struct {
	file  int
	index uint32
	hash  [proto.HashLen]byte
	frame []byte
	eof   bool
	err   error
}

// produce reads and hashes chunks in order, in parallel with sending. It
// skips sending chunks the receiver has, but still hashes those whose hash
// the sender does not know yet, so every file's root covers all its data.
// Only the sending loop touches the per-file hash state; produce reads
// known, which the loop only sets for chunks produce already handled.
func (s *Sender) produce(ctx context.Context, have []*bitset, known []*bitset, out chan<- item) {
	defer close(out)
	emit := func(it item) bool {
		select {
		case out <- it:
			return true
		case <-ctx.Done():
			if it.frame != nil {
				s.frames.put(it.frame[:0])
			}
			return false
		}
	}
	for i, f := range s.files {
		if f.verified {
			continue
		}
		read := false
		for k := uint32(0); k < f.n; k++ {
			skip := have[i].has(k)
			if skip && known[i].has(k) {
				continue
			}
			frame, h, err := s.readChunk(f, i, k)
			if err != nil {
				emit(item{err: err})
				return
			}
			read = true
			if skip {
				s.frames.put(frame[:0])
				frame = nil
			}
			if !emit(item{file: i, index: k, hash: h, frame: frame}) {
				return
			}
		}
		// A file that grew, or changed where it was already read, reads
		// fine: only its metadata tells.
		if read {
			if err := s.sources.check(f); err != nil {
				emit(item{err: err})
				return
			}
		}
		if !emit(item{file: i, eof: true}) {
			return
		}
	}
}
