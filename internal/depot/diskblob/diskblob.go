// Package diskblob keeps stored transfers' ciphertext on local disk, under
// one folder (the server's data folder):
//
//	<dir>/<id>/<upload>.upload   the data object while it is uploaded
//	<dir>/<id>/data              the completed data object
//	<dir>/<id>/manifest          the sealed manifest
//
// Every path goes through an os.Root on <dir>, and ids are checked
// (depot.CheckID), so nothing outside the folder is ever named. Parts are
// written in place at n·PartSize, streamed with a small buffer, and synced
// before WritePart returns.
package diskblob

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/stored"
)

const (
	dataName     = "data"
	manifestName = "manifest"
	uploadSuffix = ".upload"
	tmpPrefix    = "manifest.tmp-"
	// maxManifest is the largest manifest object (§6.3): "FSM1", salt,
	// nonce and tag around at most stored.MaxManifest bytes.
	maxManifest = stored.MaxManifest + 4 + stored.SaltLen + 12 + stored.Overhead
	// bufSize is the copy buffer: parts stream through it, never whole.
	bufSize = 64 << 10
)

// Blobs is a depot.Blobs on local disk. Parts of one upload are written one
// at a time (the depot serialises them); different transfers are independent.
type Blobs struct {
	root *os.Root
}

var _ depot.Blobs = (*Blobs)(nil)

// Open keeps blobs under dir, creating it (0700) if needed.
func Open(dir string) (*Blobs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("diskblob: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("diskblob: %w", err)
	}
	return &Blobs{root: root}, nil
}

// Close releases the folder.
func (b *Blobs) Close() error { return b.root.Close() }

// wrap gives err the depot's meaning: a full disk or quota is ErrFull, a
// missing file ErrNotFound.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("diskblob: %s: %w: %w", op, depot.ErrFull, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("diskblob: %s: %w", op, depot.ErrNotFound)
	}
	return fmt.Errorf("diskblob: %s: %w", op, err)
}

// syncDir makes the entries of folder name (relative to the root) durable.
func (b *Blobs) syncDir(name string) error {
	d, err := b.root.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func randomName() string {
	var r [16]byte
	_, _ = rand.Read(r[:]) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(r[:])
}

func uploadPath(id, upload string) string { return path.Join(id, upload+uploadSuffix) }

// Begin creates the upload file of id; the handle names it.
func (b *Blobs) Begin(ctx context.Context, id string) (string, error) {
	if err := depot.CheckID(id); err != nil {
		return "", err
	}
	if err := b.root.MkdirAll(id, 0o700); err != nil {
		return "", wrap("begin", err)
	}
	upload := randomName()
	f, err := b.root.OpenFile(uploadPath(id, upload), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", wrap("begin", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.syncDir(id)
	}
	if err == nil {
		err = b.syncDir(".")
	}
	if err != nil {
		_ = b.root.Remove(uploadPath(id, upload))
		return "", wrap("begin", err)
	}
	return upload, nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// WritePart writes part n at n·PartSize. Parts come in order: part n may be
// written once parts 0…n−1 are (ErrPart otherwise), and written again; a
// part shorter than PartSize is the last, and cuts off anything after it.
// If the write fails the file is cut back to where part n starts, so a
// failed part holds no space and can simply be written again.
func (b *Blobs) WritePart(ctx context.Context, id, upload string, n int, r io.Reader, size int64) (err error) {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	if err := depot.CheckID(upload); err != nil {
		return err
	}
	if n < 0 || size <= 0 || size > depot.PartSize {
		return fmt.Errorf("diskblob: part %d of %d bytes: %w", n, size, depot.ErrPart)
	}
	f, err := b.root.OpenFile(uploadPath(id, upload), os.O_WRONLY, 0)
	if err != nil {
		return wrap("write part", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return wrap("write part", err)
	}
	off := int64(n) * depot.PartSize
	if off > st.Size() {
		return fmt.Errorf("diskblob: part %d after %d bytes: %w", n, st.Size(), depot.ErrPart)
	}
	defer func() {
		if err != nil {
			// Best effort: what stays is cut off at the next write or Complete.
			if f.Truncate(off) == nil {
				_ = f.Sync()
			}
		}
	}()
	buf := make([]byte, bufSize)
	w, err := io.CopyBuffer(io.NewOffsetWriter(f, off), io.LimitReader(ctxReader{ctx, r}, size), buf)
	if err != nil {
		return wrap("write part", err)
	}
	if w < size {
		return fmt.Errorf("diskblob: part %d: %d of %d bytes: %w", n, w, size, io.ErrUnexpectedEOF)
	}
	if size < depot.PartSize && off+size < st.Size() {
		if err := f.Truncate(off + size); err != nil {
			return wrap("write part", err)
		}
	}
	return wrap("write part", f.Sync())
}

// Complete checks that the upload holds parts 0…parts−1 and renames it to
// the data object.
func (b *Blobs) Complete(ctx context.Context, id, upload string, parts int) error {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	if err := depot.CheckID(upload); err != nil {
		return err
	}
	st, err := b.root.Stat(uploadPath(id, upload))
	if err != nil {
		return wrap("complete", err)
	}
	if parts < 1 || st.Size() <= int64(parts-1)*depot.PartSize || st.Size() > int64(parts)*depot.PartSize {
		return fmt.Errorf("diskblob: complete %d parts of %d bytes: %w", parts, st.Size(), depot.ErrPart)
	}
	if err := b.root.Rename(uploadPath(id, upload), path.Join(id, dataName)); err != nil {
		return wrap("complete", err)
	}
	return wrap("complete", b.syncDir(id))
}

// PutManifest replaces the manifest atomically: a synced temporary file
// renamed over it.
func (b *Blobs) PutManifest(ctx context.Context, id string, m []byte) error {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	if len(m) > maxManifest {
		return fmt.Errorf("diskblob: manifest of %d bytes: %w", len(m), depot.ErrPart)
	}
	if err := b.root.MkdirAll(id, 0o700); err != nil {
		return wrap("put manifest", err)
	}
	tmp := path.Join(id, tmpPrefix+randomName())
	f, err := b.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return wrap("put manifest", err)
	}
	_, err = f.Write(m)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.root.Rename(tmp, path.Join(id, manifestName))
	}
	if err != nil {
		_ = b.root.Remove(tmp)
		return wrap("put manifest", err)
	}
	if err := b.syncDir(id); err != nil {
		return wrap("put manifest", err)
	}
	return wrap("put manifest", b.syncDir("."))
}

// Manifest returns the manifest.
func (b *Blobs) Manifest(ctx context.Context, id string) ([]byte, error) {
	if err := depot.CheckID(id); err != nil {
		return nil, err
	}
	m, err := b.root.ReadFile(path.Join(id, manifestName))
	if err != nil {
		return nil, wrap("manifest", err)
	}
	return m, nil
}

type section struct {
	*io.SectionReader
	f *os.File
}

func (s section) Close() error { return s.f.Close() }

// Read returns bytes [off, off+n) of the data object, read from the file as
// the caller reads.
func (b *Blobs) Read(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	if err := depot.CheckID(id); err != nil {
		return nil, err
	}
	f, err := b.root.Open(path.Join(id, dataName))
	if err != nil {
		return nil, wrap("read", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, wrap("read", err)
	}
	if off < 0 || n < 0 || off > st.Size() || n > st.Size()-off {
		f.Close()
		return nil, fmt.Errorf("diskblob: read [%d, +%d) of %d bytes: %w", off, n, st.Size(), depot.ErrRange)
	}
	return section{io.NewSectionReader(f, off, n), f}, nil
}

// Delete removes the folder of id with everything in it.
func (b *Blobs) Delete(ctx context.Context, id string) error {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	if err := b.root.RemoveAll(id); err != nil {
		return wrap("delete", err)
	}
	return wrap("delete", b.syncDir("."))
}

// List calls fn with the id of every folder under the root.
func (b *Blobs) List(ctx context.Context, fn func(id string) error) error {
	d, err := b.root.Open(".")
	if err != nil {
		return wrap("list", err)
	}
	defer d.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := d.ReadDir(256)
		for _, e := range ents {
			if e.IsDir() && depot.CheckID(e.Name()) == nil {
				if err := fn(e.Name()); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return wrap("list", err)
		}
	}
}
