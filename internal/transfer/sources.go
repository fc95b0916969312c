package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
)

// maxOpenSources bounds the source files a Sender keeps open at once: a
// folder of thousands of files would otherwise run out of descriptors.
// Files are read in order, so a handful is plenty; a chunk re-requested
// from a file closed since is read by opening it again.
const maxOpenSources = 16

// sources opens a Sender's files when they are read and keeps the most
// recently used ones open. The producer and the sending loop (resends)
// read concurrently, hence the lock.
type sources struct {
	mu   sync.Mutex
	open []*sfile // least recently used first
}

// acquire returns f's open handle, opening it if needed; release it after
// reading.
func (s *sources) acquire(f *sfile) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.fh != nil {
		// Reading in order keeps hitting the newest entry.
		if n := len(s.open); s.open[n-1] != f {
			i := slices.Index(s.open, f)
			s.open = append(slices.Delete(s.open, i, i+1), f)
		}
		f.users++
		return f.fh, nil
	}
	if len(s.open) >= maxOpenSources {
		// Never one being read: at most two readers hold a handle.
		if i := slices.IndexFunc(s.open, func(o *sfile) bool { return o.users == 0 }); i >= 0 {
			o := s.open[i]
			_ = o.fh.Close() // read-only: nothing to lose
			o.fh = nil
			s.open = slices.Delete(s.open, i, i+1)
		}
	}
	fh, err := openSource(f)
	if err != nil {
		return nil, err
	}
	f.fh = fh
	f.users++
	s.open = append(s.open, f)
	return fh, nil
}

func (s *sources) release(f *sfile) {
	s.mu.Lock()
	f.users--
	s.mu.Unlock()
}

// check reports whether f was modified, replaced or removed since the
// transfer started (what a read cannot notice: a file that grew, or
// changed in a part not read yet).
func (s *sources) check(f *sfile) error {
	fh, err := s.acquire(f)
	if err != nil {
		return err
	}
	defer s.release(f)
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	return f.same(fi)
}

func (s *sources) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.open {
		_ = f.fh.Close()
		f.fh = nil
	}
	s.open = nil
}

// statSource looks at a file before the transfer starts: it must still be
// the regular file of the size that was listed.
func statSource(src SourceFile) (fs.FileInfo, error) {
	fi, err := os.Stat(src.Local)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q was removed", ErrFileChanged, src.Local)
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %q is no longer a regular file", ErrFileChanged, src.Local)
	}
	if fi.Size() != src.Size {
		return nil, fmt.Errorf("%w: %q was %d bytes when it was listed, now %d", ErrFileChanged, src.Local, src.Size, fi.Size())
	}
	return fi, nil
}

// openSource opens f for reading; it must be the file seen when the
// transfer started, unmodified since.
func openSource(f *sfile) (*os.File, error) {
	fh, err := os.Open(f.src.Local)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q was removed", ErrFileChanged, f.src.Local)
	}
	if err != nil {
		return nil, err
	}
	fi, err := fh.Stat()
	if err == nil {
		err = f.same(fi)
	}
	if err != nil {
		fh.Close()
		return nil, err
	}
	return fh, nil
}

// same compares fi with what the transfer started from. Modification
// times have the resolution of the kernel's clock tick: a change within
// the same tick as the previous one goes unnoticed here (chunks already
// hashed are compared when read again).
func (f *sfile) same(fi fs.FileInfo) error {
	switch {
	case !os.SameFile(f.seen, fi):
		return fmt.Errorf("%w: %q was replaced", ErrFileChanged, f.src.Local)
	case fi.Size() != f.seen.Size() || !fi.ModTime().Equal(f.seen.ModTime()):
		return fmt.Errorf("%w: %q was modified", ErrFileChanged, f.src.Local)
	}
	return nil
}
