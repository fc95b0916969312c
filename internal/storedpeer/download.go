package storedpeer

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/stored"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// ReceiveOptions are those of a live receive (peer.ReceiveOptions).
type ReceiveOptions struct {
	Dir      string
	Force    bool
	Confirm  func(*proto.Manifest) error
	Progress func(transfer.Progress)
	MaxBytes int64
	// Retries bounds attempts to fetch again after a lost connection
	// without progress (0: 6).
	Retries int
}

// Received is a finished stored download.
type Received struct {
	Bytes int64
	Files int
	Roots []string
	// Counted is false if the server did not count the download (the
	// files are verified and in place all the same); CountErr says why.
	Counted  bool
	CountErr error
}

// Receive fetches the stored transfer of tk into o.Dir: the same receiver
// as a live transfer writes it (path checks, partial files, resume, roots),
// fed with the records that opened, so nothing unverified is written.
// Running it again after an interruption continues.
func (c *Client) Receive(ctx context.Context, tk ticket.Ticket, o ReceiveOptions) (*Received, error) {
	read, err := stored.ReadToken(tk.Secret[:])
	if err != nil {
		return nil, err
	}
	blob, err := c.manifest(ctx, tk.ID, read)
	if err != nil {
		return nil, err
	}
	sm, keys, err := stored.OpenManifest(tk.Secret[:], tk.ID, blob)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	salt := keys.Salt()
	res := &Received{Bytes: sm.TotalSize, Files: len(sm.Files)}
	recv := &transfer.Receiver{Dir: o.Dir, Force: o.Force, Confirm: o.Confirm, Progress: o.Progress, MaxBytes: o.MaxBytes,
		Session: "stored-" + tk.ID + "-" + hex.EncodeToString(salt[:8])}
	recv.BeforeComplete = func() {
		// Every file verified: only now does the download count.
		res.CountErr = c.do(ctx, http.MethodPost, c.url(tk.ID, "verified"), reader(read), nil, nil)
		res.Counted = res.CountErr == nil
	}
	defer recv.Close()
	a, b := transfer.Pipe(proto.ChunkHeaderLen+sm.ChunkSize, 64)
	src := &source{c: c, ctx: ctx, id: tk.ID, read: read, man: sm, keys: keys, retries: o.Retries}
	if src.retries <= 0 {
		src.retries = 6
	}
	var wg sync.WaitGroup
	var srcErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		srcErr = src.run(b)
		_ = b.Close()
	}()
	err = recv.Run(ctx, a)
	_ = a.Close()
	wg.Wait()
	if err == nil && !recv.Complete() {
		err = srcErr
	}
	if err != nil {
		// The source's reason (tampering, a lost server) beats the
		// receiver's view of it (the pipe closed).
		if srcErr != nil && !errors.Is(srcErr, transfer.ErrPipeClosed) && errors.Is(err, transfer.ErrConnLost) {
			err = srcErr
		}
		return nil, err
	}
	res.Roots = recv.Roots()
	return res, nil
}

func (c *Client) manifest(ctx context.Context, id, read string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(id, "manifest"), nil)
	if err != nil {
		return nil, err
	}
	req.Header = reader(read)
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	return io.ReadAll(io.LimitReader(resp.Body, stored.MaxManifest+1024))
}

// source plays the sender of a live transfer to the local receiver, from
// the stored records (PROTOCOL.md §4 over an in-process pipe).
type source struct {
	c       *Client
	ctx     context.Context
	id      string
	read    string
	man     *stored.Manifest
	keys    *stored.Keys
	retries int
}

// have says which chunks the receiver holds, from its accept.
type have map[int][]proto.Range

func (h have) has(file int, index uint32) bool {
	rs := h[file]
	i := sort.Search(len(rs), func(i int) bool { return rs[i][1] > index })
	return i < len(rs) && rs[i][0] <= index
}

func (s *source) run(c transfer.Conn) error {
	live := s.man.Live()
	if err := sendControl(c, live); err != nil {
		return err
	}
	b, err := c.Recv()
	if err != nil {
		return err
	}
	m, err := proto.ParseControl(b)
	if err != nil {
		return err
	}
	var acc *proto.Accept
	switch m := m.(type) {
	case *proto.Accept:
		acc = m
	case *proto.Decline:
		return transfer.ErrDeclined
	default:
		return fmt.Errorf("%w: got %s", transfer.ErrProtocol, m.T())
	}
	held := have{}
	for _, r := range acc.Resume {
		held[r.File] = r.Have
	}
	// The receiver's answers: credit, and the end. The reader ends when
	// the pipe closes, which run does before it returns.
	var credit atomic.Int64
	credit.Store(int64(acc.Window))
	more := make(chan struct{}, 1)
	ended := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	defer func() {
		_ = c.Close()
		wg.Wait()
	}()
	go func() {
		defer wg.Done()
		ended <- s.answers(c, &credit, more)
	}()
	// Fetch from the record of the first chunk the receiver lacks.
	var first int64 = -1
	var pos int64
	for i, f := range live.Files {
		for k := uint32(0); int64(k)*int64(live.ChunkSize) < f.Size; k++ {
			if !held.has(i, k) {
				first = pos + int64(k)*int64(live.ChunkSize)
				break
			}
		}
		if first >= 0 {
			break
		}
		pos += f.Size
	}
	var data io.Reader
	var skip int64
	if first >= 0 {
		rec := first / stored.RecordSize
		body := &refetcher{s: s, off: rec * stored.SealedRecordSize}
		defer body.close()
		data = stored.NewOpener(body, s.keys, live.TotalSize, rec)
		skip = rec * stored.RecordSize
	}
	pos = 0
	buf := make([]byte, proto.ChunkHeaderLen+live.ChunkSize)
	for i, f := range live.Files {
		for k := uint32(0); int64(k)*int64(live.ChunkSize) < f.Size; k++ {
			off := pos + int64(k)*int64(live.ChunkSize)
			n := int(min(int64(live.ChunkSize), f.Size-int64(k)*int64(live.ChunkSize)))
			if off+int64(n) <= skip || data == nil {
				continue // before the first chunk needed: not fetched
			}
			chunk := buf[proto.ChunkHeaderLen : proto.ChunkHeaderLen+n]
			from := max(0, skip-off) // only the first chunk fetched may start before the record
			if from > 0 {
				if _, err := io.ReadFull(data, chunk[:n-int(from)]); err != nil {
					return openErr(err)
				}
				continue // that chunk's start is not fetched; the receiver holds it
			}
			if _, err := io.ReadFull(data, chunk); err != nil {
				return openErr(err)
			}
			if held.has(i, k) {
				continue
			}
			for credit.Load() <= 0 {
				select {
				case <-more:
				case err := <-ended:
					return cmp.Or(err, fmt.Errorf("%w: complete before the last chunk", transfer.ErrProtocol))
				case <-s.ctx.Done():
					return s.ctx.Err()
				}
			}
			credit.Add(-1)
			h := proto.ChunkHash(chunk)
			frame := proto.AppendChunkHeader(buf[:0], 0, uint32(i), k, &h)
			if err := c.Send(frame[:proto.ChunkHeaderLen+n]); err != nil {
				return err
			}
		}
		pos += f.Size
		if err := sendControl(c, &proto.EOF{File: i, Root: s.man.Files[i].Root}); err != nil {
			return err
		}
	}
	if err := sendControl(c, &proto.Done{}); err != nil {
		return err
	}
	select {
	case err := <-ended:
		return err
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// answers reads what the receiver says until it completes or fails: ACKs
// add credit (and wake the sending loop); nothing else matters here.
func (s *source) answers(c transfer.Conn, credit *atomic.Int64, more chan<- struct{}) error {
	for {
		b, err := c.Recv()
		if err != nil {
			return err
		}
		if len(b) > 0 && b[0] == proto.FrameAck {
			a, err := proto.ParseAck(b)
			if err != nil {
				return err
			}
			credit.Add(int64(a.Credit))
			select {
			case more <- struct{}{}:
			default:
			}
			continue
		}
		if len(b) == 0 || b[0] != proto.FrameControl {
			// A NACK cannot happen: the chunks were hashed here.
			return fmt.Errorf("%w: unexpected frame", transfer.ErrProtocol)
		}
		m, err := proto.ParseControl(b)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *proto.Complete:
			return nil
		case *proto.Error:
			return &transfer.PeerError{Code: m.Code, Message: m.Message}
		case *proto.Cancel:
			return transfer.ErrCanceled
		}
	}
}

// openErr words a failure to read the stored stream.
func openErr(err error) error {
	if errors.Is(err, stored.ErrRecord) || errors.Is(err, stored.ErrTruncated) || errors.Is(err, stored.ErrTrailing) {
		return fmt.Errorf("%w: %w", ErrTampered, err)
	}
	return err
}

func sendControl(c transfer.Conn, m proto.Control) error {
	b, err := proto.MarshalControl(m)
	if err != nil {
		return err
	}
	return c.Send(b)
}

// refetcher reads the data object from off on, and after a lost
// connection asks again from where it stopped.
type refetcher struct {
	s    *source
	off  int64
	body io.ReadCloser
	// fails counts attempts since the last byte arrived.
	fails int
}

func (r *refetcher) close() {
	if r.body != nil {
		_ = r.body.Close()
	}
}

func (r *refetcher) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.fails = 0
		}
		if err == nil || (errors.Is(err, io.EOF) && n > 0) {
			return n, nil
		}
		_ = r.body.Close()
		r.body = nil
		if errors.Is(err, io.EOF) {
			return n, io.EOF
		}
		if n > 0 {
			return n, nil
		}
		if err := r.wait(err); err != nil {
			return 0, err
		}
	}
}

func (r *refetcher) wait(cause error) error {
	r.fails++
	if r.fails > r.s.retries {
		return fmt.Errorf("%w: %w", ErrInterrupted, cause)
	}
	select {
	case <-time.After(time.Duration(min(r.fails, 4)) * time.Second):
		return nil
	case <-r.s.ctx.Done():
		return r.s.ctx.Err()
	}
}

func (r *refetcher) open() error {
	for {
		req, err := http.NewRequestWithContext(r.s.ctx, http.MethodGet, r.s.c.url(r.s.id, "data"), nil)
		if err != nil {
			return err
		}
		req.Header = reader(r.s.read)
		req.Header.Set("Range", "bytes="+strconv.FormatInt(r.off, 10)+"-")
		resp, err := r.s.c.http().Do(req)
		if err == nil && resp.StatusCode == http.StatusPartialContent {
			r.body = resp.Body
			return nil
		}
		if err == nil {
			if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
				resp.Body.Close()
				r.body = io.NopCloser(eofReader{})
				return nil
			}
			err = statusError(resp)
			resp.Body.Close()
			if !retryable(err) {
				return err
			}
		}
		if r.s.ctx.Err() != nil {
			return r.s.ctx.Err()
		}
		if err := r.wait(err); err != nil {
			return err
		}
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
