package transfer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"

	"github.com/ferrydev/ferry/internal/proto"
)

// Progress log (see PartNames): a header describing the file, then one
// record per chunk whose data was already synced to the partial file.
//
//	header: "FERRYPG1" | size u64 | chunkSize u32 | mtime i64 | crc32 u32     (32 bytes)
//	record: index u32 | blake3[32] | crc32(index|hash) u32                     (40 bytes)
//
// Records are appended only after the data they name is durable, so the
// log never vouches for a zero-filled or torn region. A torn last record
// fails its CRC and is dropped (that chunk is simply fetched again).
//
// When a file of a transfer with a session finishes, one more record seals
// the log: index sealIndex (never a chunk's) and, in place of a chunk hash,
// seal(session, root). The sealed log stays until the whole transfer is
// complete, so that a later run of the same transfer knows the file is its
// own and what it held (see Receiver.finishedEarlier).
const (
	logMagic     = "FERRYPG1"
	logHeaderLen = 32
	logRecordLen = 40
	sealIndex    = ^uint32(0)
)

// seal binds a finished file's root to the transfer's session.
func seal(session, root string) [proto.HashLen]byte {
	return sha256.Sum256([]byte("ferry finished\x00" + session + "\x00" + root))
}

// readSeal returns the hash of the seal record at off in the log at name,
// if there is a whole one.
func readSeal(root *os.Root, name string, off int64) ([proto.HashLen]byte, bool) {
	f, err := root.Open(name)
	if err != nil {
		return [proto.HashLen]byte{}, false
	}
	defer f.Close()
	var r [logRecordLen]byte
	if _, err := f.ReadAt(r[:], off); err != nil {
		return [proto.HashLen]byte{}, false
	}
	if crc32.ChecksumIEEE(r[:36]) != binary.BigEndian.Uint32(r[36:]) || binary.BigEndian.Uint32(r[:]) != sealIndex {
		return [proto.HashLen]byte{}, false
	}
	return [proto.HashLen]byte(r[4:36]), true
}

type logRecord struct {
	index uint32
	hash  [proto.HashLen]byte
}

type progressLog struct {
	f        *os.File
	end      int64 // where the next record goes
	reserved int64 // disk space is allocated up to here
}

// logReserve is how far ahead of its end a progress log has its disk space
// allocated: records for 1,600 chunks, more than a sync interval brings. A
// disk that fills up with chunk data then still takes the records of the
// chunks already written, so they are kept for a resume.
const logReserve = 64 << 10

// newProgressLog continues a log at end and reserves space ahead of it.
func newProgressLog(f *os.File, end int64) *progressLog {
	l := &progressLog{f: f, end: end, reserved: end}
	l.reserve(0)
	return l
}

// reserve makes sure the space for n more bytes and logReserve after them
// is allocated. Where the file system cannot, writes simply go on as before.
func (l *progressLog) reserve(n int) {
	if l.end+int64(n) <= l.reserved-logReserve/2 {
		return
	}
	want := l.end + int64(n) + logReserve
	if allocate(l.f, l.reserved, want-l.reserved) == nil {
		l.reserved = want
	}
}

func logHeader(size int64, chunkSize int, mtime int64) []byte {
	b := make([]byte, 0, logHeaderLen)
	b = append(b, logMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint32(b, uint32(chunkSize))
	b = binary.BigEndian.AppendUint64(b, uint64(mtime))
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// logState is what a progress log's name held when the transfer started.
type logState int

const (
	logMissing logState = iota
	logValid            // ours, for this very file: its records count
	logStale            // ours but for another file or version, or torn: start over
	logForeign          // not a ferry progress log: never overwritten without --force
)

// readProgressLog reads the log at name, streaming (a log holds 40 bytes per
// chunk on disk), into have and, unless nil, sum, and returns the length of
// its valid prefix. Only a logValid log contributes records.
func readProgressLog(root *os.Root, name string, hdr []byte, have *rangeSet, sum *rootState) (int64, logState, error) {
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, logMissing, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	got := make([]byte, logHeaderLen)
	n, _ := io.ReadFull(br, got)
	got = got[:n]
	if !bytes.Equal(got, hdr) {
		m := min(len(got), len(logMagic))
		if !bytes.Equal(got[:m], []byte(logMagic)[:m]) {
			return 0, logForeign, nil
		}
		return 0, logStale, nil
	}
	off := int64(logHeaderLen)
	var r [logRecordLen]byte
	for {
		if _, err := io.ReadFull(br, r[:]); err != nil {
			break
		}
		if crc32.ChecksumIEEE(r[:36]) != binary.BigEndian.Uint32(r[36:]) {
			break
		}
		idx := binary.BigEndian.Uint32(r[:])
		if idx >= have.n {
			break
		}
		if have.set(idx) && sum != nil {
			sum.add(idx, [proto.HashLen]byte(r[4:36]))
		}
		off += logRecordLen
	}
	return off, logValid, nil
}

// createProgressLog starts a log at name, replacing whatever was there.
func createProgressLog(root *os.Root, name string, hdr []byte) (*progressLog, error) {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		return nil, err
	}
	return newProgressLog(f, int64(len(hdr))), nil
}

// reopenProgressLog continues a log: after its valid prefix (cutting a torn
// tail) or, with valid < 0, at its end.
func reopenProgressLog(root *os.Root, name string, valid int64) (*progressLog, error) {
	if valid < 0 {
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		return newProgressLog(f, fi.Size()), nil
	}
	f, err := root.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return newProgressLog(f, valid), nil
}

// rootState computes a file's root from the chunk hashes in its progress
// log, so the receiver never holds a hash per chunk of the whole file (nor
// a hasher per unfinished file): hashes in index order go straight into
// the hasher, the few recorded ahead of the next index (after a
// re-requested chunk) wait in a map.
type rootState struct {
	rh    *proto.RootHasher
	n     uint32
	next  uint32
	ahead map[uint32][proto.HashLen]byte
}

func newRootState(size int64, chunkSize int, n uint32) *rootState {
	return &rootState{rh: proto.NewRootHasher(size, chunkSize), n: n}
}

// add takes the hash of chunk i; each index once (the caller dedups).
func (s *rootState) add(i uint32, h [proto.HashLen]byte) {
	switch {
	case i < s.next:
		return
	case i > s.next:
		if s.ahead == nil {
			s.ahead = map[uint32][proto.HashLen]byte{}
		}
		s.ahead[i] = h
		return
	}
	s.rh.Add(&h)
	s.next++
	for {
		h, ok := s.ahead[s.next]
		if !ok {
			return
		}
		delete(s.ahead, s.next)
		s.rh.Add(&h)
		s.next++
	}
}

// hex returns the root once every chunk's hash is in, else "".
func (s *rootState) hex() string {
	if s.next != s.n {
		return ""
	}
	return s.rh.Hex()
}

func (l *progressLog) append(recs []logRecord) error {
	buf := make([]byte, 0, len(recs)*logRecordLen)
	for _, r := range recs {
		start := len(buf)
		buf = binary.BigEndian.AppendUint32(buf, r.index)
		buf = append(buf, r.hash[:]...)
		buf = binary.BigEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf[start:]))
	}
	l.reserve(len(buf))
	n, err := l.f.Write(buf)
	l.end += int64(n)
	return err
}

// sealAndSync appends the seal record and makes the log durable.
func (l *progressLog) sealAndSync(h [proto.HashLen]byte) error {
	if err := l.append([]logRecord{{index: sealIndex, hash: h}}); err != nil {
		return err
	}
	return l.f.Sync()
}

func (l *progressLog) close() error { return l.f.Close() }
