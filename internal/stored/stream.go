package stored

import (
	"errors"
	"fmt"
	"io"
)

// Sealer turns a plaintext stream of a known size into sealed records, from
// record first on (a resumed upload starts where the server stopped).
type Sealer struct {
	k     *Keys
	w     io.Writer
	total int64
	next  int64 // index of the record being filled
	buf   []byte
	out   []byte
	err   error
}

// ErrSize: a Sealer was given more or fewer bytes than the stream's size.
var ErrSize = errors.New("stored: stream size differs from the manifest")

// NewSealer returns a Sealer writing to w the records of a total-byte stream
// from record first on; the caller writes the plaintext from byte
// first·RecordSize on.
func NewSealer(w io.Writer, k *Keys, total, first int64) *Sealer {
	return &Sealer{k: k, w: w, total: total, next: first,
		buf: make([]byte, 0, RecordSize), out: make([]byte, 0, SealedRecordSize)}
}

// Next returns the index of the first record not yet written.
func (s *Sealer) Next() int64 { return s.next }

func (s *Sealer) flush() error {
	final := s.next == Records(s.total)-1
	s.out = s.k.SealRecord(s.out[:0], s.buf, s.next, final)
	if _, err := s.w.Write(s.out); err != nil {
		return err
	}
	s.next++
	s.buf = s.buf[:0]
	return nil
}

// Write seals p into records, writing each as soon as it is full.
func (s *Sealer) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := 0
	for len(p) > 0 {
		if s.next >= Records(s.total) || len(s.buf) == recordLen(s.total, s.next) {
			s.err = fmt.Errorf("%w: more than %d bytes", ErrSize, s.total)
			return n, s.err
		}
		c := min(len(p), recordLen(s.total, s.next)-len(s.buf))
		s.buf = append(s.buf, p[:c]...)
		p, n = p[c:], n+c
		// A full record goes out at once; a short final one waits for Close.
		if len(s.buf) == RecordSize {
			if s.err = s.flush(); s.err != nil {
				return n, s.err
			}
		}
	}
	return n, nil
}

// Close writes the final record if it is still open. The stream must have
// had exactly its size.
func (s *Sealer) Close() error {
	if s.err != nil {
		return s.err
	}
	last := Records(s.total) - 1
	if s.next == last && len(s.buf) == recordLen(s.total, last) {
		s.err = s.flush()
		return s.err
	}
	if s.next <= last {
		s.err = fmt.Errorf("%w: ended at record %d of %d", ErrSize, s.next, last+1)
		return s.err
	}
	return nil
}

// Opener reads sealed records from r, from record first on, and returns only
// plaintext of records that opened.
type Opener struct {
	k      *Keys
	r      io.Reader
	total  int64
	next   int64 // next record to read
	sealed []byte
	plain  []byte
	pos    int
	err    error
}

// NewOpener returns an Opener for the records of a total-byte stream from
// record first on; its output starts at plaintext byte first·RecordSize.
func NewOpener(r io.Reader, k *Keys, total, first int64) *Opener {
	return &Opener{k: k, r: r, total: total, next: first,
		sealed: make([]byte, SealedRecordSize), plain: make([]byte, 0, RecordSize)}
}

// Next returns the index of the first record not yet read.
func (o *Opener) Next() int64 { return o.next }

func (o *Opener) fill() error {
	n := Records(o.total)
	if o.next >= n {
		// Nothing may follow the final record.
		var b [1]byte
		if k, _ := io.ReadFull(o.r, b[:]); k > 0 {
			return ErrTrailing
		}
		return io.EOF
	}
	size := recordLen(o.total, o.next) + Overhead
	if _, err := io.ReadFull(o.r, o.sealed[:size]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: at record %d of %d", ErrTruncated, o.next, n)
		}
		return err
	}
	p, err := o.k.OpenRecord(o.plain[:0], o.sealed[:size], o.next, o.next == n-1)
	if err != nil {
		return err
	}
	o.plain, o.pos = p, 0
	o.next++
	return nil
}

// Read returns plaintext; a record that does not open, a stream cut short
// or one with bytes after its final record is an error.
func (o *Opener) Read(p []byte) (int, error) {
	for o.pos == len(o.plain) {
		if o.err != nil {
			return 0, o.err
		}
		o.err = o.fill()
	}
	n := copy(p, o.plain[o.pos:])
	o.pos += n
	return n, nil
}
