package storedpeer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/stored"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// ChunkSize is the chunk size of stored manifests' roots.
const ChunkSize = 1 << 20

// ErrInterrupted: the connection to the server was lost and did not come
// back; running the same command again continues from where it stopped.
var ErrInterrupted = errors.New("storedpeer: connection to the server lost")

// UploadOptions say what to store and for how long.
type UploadOptions struct {
	Files []transfer.SourceFile
	// Expire is the transfer's lifetime (0: the server's default).
	Expire time.Duration
	// Downloads is the download limit (nil: the server's default of 1; 0: unlimited).
	Downloads *int
	Agent     string
	Progress  func(transfer.Progress)
	// StateDir keeps what a rerun needs to continue an interrupted upload
	// ("" : no resume).
	StateDir string
	// Live stores the transfer of this live link, under its id, with the
	// token the server gave its sender.
	Live *Live
	// Retries bounds attempts per part on a lost connection (0: 6).
	Retries int
}

// Live is a live link being turned into a stored one.
type Live struct {
	Ticket ticket.Ticket
	Token  string
}

// Uploaded is a stored transfer ready to download.
type Uploaded struct {
	Link       string
	ID         string
	WriteToken string
	Expires    time.Time
	Downloads  int
	Bytes      int64
	Files      int
	// Resumed is what an earlier, interrupted run had uploaded.
	Resumed int64
}

// uploadState is what a rerun needs; it holds the link's secret (0600).
type uploadState struct {
	ID         string                `json:"id"`
	Secret     []byte                `json:"secret"`
	WriteToken string                `json:"writeToken"`
	Salt       []byte                `json:"salt"`
	Expires    int64                 `json:"expires"`
	Downloads  int                   `json:"downloads"`
	Files      []transfer.SourceFile `json:"files"`
}

func statePath(dir string, files []transfer.SourceFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00", f.Path, f.Local)
	}
	return filepath.Join(dir, "upload-"+hex.EncodeToString(h.Sum(nil)[:10])+".json")
}

func sameFiles(a, b []transfer.SourceFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || a[i].Local != b[i].Local || a[i].Size != b[i].Size || !a[i].Mtime.Equal(b[i].Mtime) {
			return false
		}
	}
	return true
}

// Upload seals and stores o.Files and returns the link. With a StateDir, a
// rerun of an interrupted upload of the same, unchanged files continues it.
func (c *Client) Upload(ctx context.Context, o UploadOptions) (*Uploaded, error) {
	man := proto.Manifest{Version: proto.Version, Agent: o.Agent, ChunkSize: ChunkSize}
	for _, f := range o.Files {
		man.Files = append(man.Files, proto.File{Path: f.Path, Size: f.Size, Mtime: f.Mtime.UnixMilli()})
		man.TotalSize += f.Size
	}
	if err := man.Validate(); err != nil {
		return nil, err
	}
	sealedSize := stored.SealedSize(man.TotalSize)
	var st *uploadState
	var sp string
	if o.StateDir != "" {
		sp = statePath(o.StateDir, o.Files)
		st = c.loadState(ctx, sp, o.Files)
	}
	parts := 0
	if st != nil {
		status, err := c.status(ctx, st)
		switch {
		case err == nil && status.State == depot.Ready:
			_ = os.Remove(sp)
			return st.result(c, man, sealedSize), nil
		case err == nil && status.State == depot.Uploading && status.Size == sealedSize:
			parts = status.Parts
		default:
			st = nil // gone, or not what we would upload now: start again
		}
	}
	if st == nil {
		var err error
		if st, err = c.create(ctx, o, sealedSize); err != nil {
			return nil, err
		}
		if sp != "" {
			if err := saveState(sp, st); err != nil {
				return nil, err
			}
		}
	}
	var salt [stored.SaltLen]byte
	copy(salt[:], st.Salt)
	keys, err := stored.NewKeys(st.Secret, st.ID, salt)
	if err != nil {
		return nil, err
	}
	up := &uploader{c: c, ctx: ctx, st: st, size: sealedSize, next: parts, retries: o.Retries}
	if up.retries <= 0 {
		up.retries = 6
	}
	skip := int64(parts) * depot.PartSize / stored.SealedRecordSize * stored.RecordSize
	roots, err := up.stream(keys, o.Files, man, skip, o.Progress)
	if err != nil {
		return nil, err
	}
	sm := stored.Manifest{Version: man.Version, Agent: man.Agent, ChunkSize: man.ChunkSize, TotalSize: man.TotalSize}
	for i, f := range man.Files {
		sm.Files = append(sm.Files, stored.File{Path: f.Path, Size: f.Size, Mtime: f.Mtime, Root: roots[i]})
	}
	blob, err := keys.SealManifest(sm)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodPut, c.url(st.ID, "manifest"), bearer(st.WriteToken), blob, nil); err != nil {
		return nil, err
	}
	if sp != "" {
		_ = os.Remove(sp)
	}
	res := st.result(c, man, sealedSize)
	res.Resumed = min(skip, man.TotalSize)
	return res, nil
}

func (st *uploadState) result(c *Client, man proto.Manifest, sealed int64) *Uploaded {
	var tk ticket.Ticket
	tk.ID = st.ID
	copy(tk.Secret[:], st.Secret)
	return &Uploaded{Link: tk.Link(c.Base), ID: st.ID, WriteToken: st.WriteToken, Expires: time.Unix(st.Expires, 0),
		Downloads: st.Downloads, Bytes: man.TotalSize, Files: len(man.Files)}
}

func (c *Client) status(ctx context.Context, st *uploadState) (depot.Status, error) {
	var s depot.Status
	err := c.do(ctx, http.MethodGet, c.url(st.ID), bearer(st.WriteToken), nil, &s)
	return s, err
}

func (c *Client) create(ctx context.Context, o UploadOptions, size int64) (*uploadState, error) {
	st := &uploadState{Files: o.Files, Salt: make([]byte, stored.SaltLen), Secret: make([]byte, ticket.SecretBytes)}
	_, _ = rand.Read(st.Salt)
	req := depot.CreateRequest{Size: size, Expire: int64(o.Expire / time.Second), Downloads: o.Downloads}
	if o.Live != nil {
		copy(st.Secret, o.Live.Ticket.Secret[:])
		req.ID, req.LiveToken = o.Live.Ticket.ID, o.Live.Token
	} else {
		_, _ = rand.Read(st.Secret)
	}
	var err error
	if req.ReadToken, err = stored.ReadToken(st.Secret); err != nil {
		return nil, err
	}
	hdr := http.Header{}
	if c.Token != "" {
		hdr = bearer(c.Token)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var created depot.Created
	if err := c.do(ctx, http.MethodPost, c.url(), hdr, body, &created); err != nil {
		return nil, err
	}
	if ticket.ValidateID(created.ID) != nil || (req.ID != "" && created.ID != req.ID) {
		return nil, fmt.Errorf("%w: bad id", ErrServer)
	}
	st.ID, st.WriteToken, st.Expires, st.Downloads = created.ID, created.WriteToken, created.Expires, created.Downloads
	return st, nil
}

func (c *Client) loadState(ctx context.Context, path string, files []transfer.SourceFile) *uploadState {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 1<<20 {
		return nil
	}
	var st uploadState
	if json.Unmarshal(b, &st) != nil || len(st.Secret) != ticket.SecretBytes || len(st.Salt) != stored.SaltLen || !sameFiles(st.Files, files) {
		return nil
	}
	return &st
}

func saveState(path string, st *uploadState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// uploader seals the files' stream into parts and stores each.
type uploader struct {
	c       *Client
	ctx     context.Context
	st      *uploadState
	size    int64 // of the data object
	next    int   // the next part to store
	retries int
	buf     []byte
	// progress
	report func()
}

// partPlain is the plaintext a whole part holds.
const partPlain = depot.PartSize / stored.SealedRecordSize * stored.RecordSize

// stream reads every file once, in order: it hashes all of it for the
// roots and seals and stores what the server does not have yet (the
// plaintext from skip on). It returns the files' roots.
func (u *uploader) stream(keys *stored.Keys, files []transfer.SourceFile, man proto.Manifest, skip int64, progress func(transfer.Progress)) ([]string, error) {
	total := man.TotalSize
	filesDone := 0
	u.report = func() {
		if progress != nil {
			done := min(total, int64(u.next)*partPlain)
			progress(transfer.Progress{Total: total, Done: done, Resumed: min(total, skip), Files: len(files), FilesDone: filesDone, Time: time.Now()})
		}
	}
	u.report()
	sealer := stored.NewSealer(u, keys, total, skip/stored.RecordSize)
	roots := make([]string, len(files))
	buf := make([]byte, ChunkSize)
	var pos int64
	for i, f := range files {
		root, err := u.file(f, buf, sealer, &pos, skip)
		if err != nil {
			return nil, err
		}
		roots[i] = root
		filesDone++
	}
	if err := sealer.Close(); err != nil {
		return nil, err
	}
	if u.next != depot.PartCount(u.size) {
		return nil, fmt.Errorf("%w: %d of %d parts stored", ErrConflict, u.next, depot.PartCount(u.size))
	}
	u.report()
	return roots, nil
}

func changed(f transfer.SourceFile, fi os.FileInfo) bool {
	return fi.Size() != f.Size || !fi.ModTime().Equal(f.Mtime)
}

// file streams one file; pos is the stream offset of its first byte.
func (u *uploader) file(f transfer.SourceFile, buf []byte, sealer *stored.Sealer, pos *int64, skip int64) (string, error) {
	fh, err := os.Open(f.Local)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || changed(f, fi) {
		return "", fmt.Errorf("%w: %q", transfer.ErrFileChanged, f.Local)
	}
	rh := proto.NewRootHasher(f.Size, ChunkSize)
	for off := int64(0); off < f.Size; off += ChunkSize {
		n := min(ChunkSize, f.Size-off)
		if _, err := io.ReadFull(fh, buf[:n]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: %q got shorter", transfer.ErrFileChanged, f.Local)
			}
			return "", err
		}
		h := proto.ChunkHash(buf[:n])
		rh.Add(&h)
		if end := *pos + n; end > skip {
			if _, err := sealer.Write(buf[max(0, skip-*pos):n]); err != nil {
				return "", err
			}
		}
		*pos += n
	}
	if fi, err := fh.Stat(); err != nil || changed(f, fi) {
		return "", fmt.Errorf("%w: %q", transfer.ErrFileChanged, f.Local)
	}
	return rh.Hex(), nil
}

// Write collects sealed records into parts and stores each when full.
func (u *uploader) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if u.next >= depot.PartCount(u.size) {
			return n, fmt.Errorf("%w: more data than declared", ErrConflict)
		}
		want := int(depot.PartLen(u.size, u.next))
		if u.buf == nil {
			u.buf = make([]byte, 0, depot.PartSize)
		}
		c := min(len(p), want-len(u.buf))
		u.buf = append(u.buf, p[:c]...)
		p, n = p[c:], n+c
		if len(u.buf) == want {
			if err := u.put(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// put stores the collected part, again after a lost connection.
func (u *uploader) put() error {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		err := u.c.do(u.ctx, http.MethodPut, u.c.url(u.st.ID, "parts", strconv.Itoa(u.next)), bearer(u.st.WriteToken), u.buf, nil)
		if errors.Is(err, ErrConflict) {
			// An earlier attempt may have been stored after all.
			if s, serr := u.c.status(u.ctx, u.st); serr == nil && s.Parts > u.next {
				err = nil
			}
		}
		if err == nil {
			u.next++
			u.buf = u.buf[:0]
			u.report()
			return nil
		}
		if u.ctx.Err() != nil {
			return u.ctx.Err()
		}
		if !retryable(err) {
			return err
		}
		if attempt >= u.retries {
			return fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		select {
		case <-time.After(backoff):
		case <-u.ctx.Done():
			return u.ctx.Err()
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

// retryable: a lost connection or a server error, not a refusal.
func retryable(err error) bool {
	for _, e := range codeErrors {
		if errors.Is(err, e) {
			return false
		}
	}
	return !errors.Is(err, ErrUnsupported)
}
