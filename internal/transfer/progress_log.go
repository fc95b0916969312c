package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"

	"github.com/ferrydev/ferry/internal/proto"
)

// Progress log (NAME.ferry-progress): a header describing the file, then
// one record per chunk whose data was already synced to NAME.ferry-part.
//
//	header: "FERRYPG1" | size u64 | chunkSize u32 | mtime i64 | crc32 u32     (32 bytes)
//	record: index u32 | blake3[32] | crc32(index|hash) u32                     (40 bytes)
//
// Records are appended only after the data they name is durable, so the
// log never vouches for a zero-filled or torn region. A torn last record
// fails its CRC and is dropped (that chunk is simply fetched again).
const (
	logMagic     = "FERRYPG1"
	logHeaderLen = 32
	logRecordLen = 40
)

type logRecord struct {
	index uint32
	hash  [proto.HashLen]byte
}

type progressLog struct {
	f *os.File
}

func logHeader(size int64, chunkSize int, mtime int64) []byte {
	b := make([]byte, 0, logHeaderLen)
	b = append(b, logMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint32(b, uint32(chunkSize))
	b = binary.BigEndian.AppendUint64(b, uint64(mtime))
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// openProgressLog opens the log at name for a file with this identity. If
// an existing log matches, its valid records are returned; otherwise (no
// log, another file, garbage) a fresh log is started and fresh is true so
// the caller discards the partial data too.
func openProgressLog(root *os.Root, name string, size int64, chunkSize int, mtime int64, n uint32) (l *progressLog, have *bitset, hashes [][proto.HashLen]byte, fresh bool, err error) {
	hdr := logHeader(size, chunkSize, mtime)
	have = newBitset(n)
	hashes = make([][proto.HashLen]byte, n)
	f, err := root.OpenFile(name, os.O_RDWR, 0)
	if err == nil {
		valid, ok := readLog(f, hdr, n, have, hashes)
		if ok {
			// Cut a torn tail so new records follow valid ones.
			if err := f.Truncate(valid); err == nil {
				if _, err := f.Seek(valid, io.SeekStart); err == nil {
					return &progressLog{f: f}, have, hashes, false, nil
				}
			}
		}
		f.Close()
		have = newBitset(n)
		clear(hashes)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, false, err
	}
	f, err = root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, nil, false, err
	}
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		return nil, nil, nil, false, err
	}
	return &progressLog{f: f}, have, hashes, true, nil
}

// readLog fills have/hashes from f and returns the length of its valid
// prefix; ok is false if the header does not match.
func readLog(f *os.File, hdr []byte, n uint32, have *bitset, hashes [][proto.HashLen]byte) (int64, bool) {
	data, err := io.ReadAll(f)
	if err != nil || len(data) < logHeaderLen || !bytes.Equal(data[:logHeaderLen], hdr) {
		return 0, false
	}
	off := logHeaderLen
	for ; off+logRecordLen <= len(data); off += logRecordLen {
		r := data[off : off+logRecordLen]
		if crc32.ChecksumIEEE(r[:36]) != binary.BigEndian.Uint32(r[36:]) {
			break
		}
		idx := binary.BigEndian.Uint32(r)
		if idx >= n {
			break
		}
		have.set(idx)
		copy(hashes[idx][:], r[4:36])
	}
	return int64(off), true
}

func (l *progressLog) append(recs []logRecord) error {
	buf := make([]byte, 0, len(recs)*logRecordLen)
	for _, r := range recs {
		start := len(buf)
		buf = binary.BigEndian.AppendUint32(buf, r.index)
		buf = append(buf, r.hash[:]...)
		buf = binary.BigEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf[start:]))
	}
	_, err := l.f.Write(buf)
	return err
}

func (l *progressLog) close() error { return l.f.Close() }
