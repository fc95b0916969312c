package transfer

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/ferrydev/ferry/internal/proto"
)

// writeQueueBytes bounds the chunk data waiting for the disk, and
// writeBuffers the chunks; when all buffers are in use the receive loop
// waits, which is the backpressure a slow disk needs. Bytes, not chunks:
// eight 1 MiB chunks were 8 MiB of a receiver's live heap, and a disk
// that keeps up with the network needs only one chunk written while the
// next is filled (the transport's receive window queues behind them):
// 4 MiB held 3.5-4.7 MB of a QUIC receiver's 20 MB peak live heap at 1 %
// loss, where each repaired hole releases a burst; 2 MiB cut its peak RSS
// by 2-3 MiB at the same speed (issue 13).
const (
	writeQueueBytes = 2 << 20
	writeBuffers    = 8
)

// writeBufferCount is how many chunk buffers the writer may use: at least
// two (one written while the next is filled).
func writeBufferCount(chunkSize int) int {
	return max(2, min(writeBuffers, writeQueueBytes/max(1, chunkSize)))
}

// diskWriter writes verified chunks in the background. Writing in the
// receive loop stopped reading whenever the disk or the page cache was
// slow, the data channel's window closed, and the sender stalled; now the
// loop only verifies and hands chunks over. A chunk goes to the flusher (to
// be made durable and recorded) only once it is written; chunks that could
// not be written are reported back so the receiver can forget them.
type diskWriter struct {
	flush *flusher
	size  int // buffer size: the transfer's chunk size
	jobs  chan writeJob
	free  chan []byte
	bufs  int // buffers made so far
	limit int // buffers allowed (writeBufferCount)
	wg    sync.WaitGroup

	mu     sync.Mutex
	err    error         // the first failure
	failed []failedChunk // chunks that were not written
}

type failedChunk struct {
	f     *rfile
	index uint32
	n     int
}

type writeJob struct {
	f     *rfile
	index uint32
	hash  [proto.HashLen]byte
	data  []byte
	buf   []byte
}

func newDiskWriter(flush *flusher, chunkSize int) *diskWriter {
	n := writeBufferCount(chunkSize)
	w := &diskWriter{flush: flush, size: chunkSize, limit: n, jobs: make(chan writeJob, n), free: make(chan []byte, n)}
	go w.loop()
	return w
}

// buffer returns a buffer for a chunk, waiting while all are queued.
func (w *diskWriter) buffer() []byte {
	select {
	case b := <-w.free:
		return b
	default:
	}
	if w.bufs < w.limit {
		w.bufs++
		return alignedBuffer(w.size)
	}
	return <-w.free
}

// write queues a copy of data, chunk index of f, for the disk; it waits
// while all buffers are queued.
func (w *diskWriter) write(f *rfile, index uint32, hash [proto.HashLen]byte, data []byte) {
	buf := w.buffer()
	n := copy(buf, data)
	w.wg.Add(1)
	w.jobs <- writeJob{f: f, index: index, hash: hash, data: buf[:n], buf: buf}
}

func (w *diskWriter) loop() {
	for j := range w.jobs {
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err == nil {
			if err = j.f.writeAt(j.data, int64(j.index)*int64(w.size)); err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err // its path may be /proc/self/fd/N
				}
				err = fmt.Errorf("writing %s: %w", j.f.part, err)
			}
		}
		if err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.failed = append(w.failed, failedChunk{f: j.f, index: j.index, n: len(j.data)})
			w.mu.Unlock()
		} else {
			w.flush.add(j.f, j.index, j.hash, len(j.data))
		}
		w.free <- j.buf
		w.wg.Done()
	}
}

// failure returns the first write error so far without waiting.
func (w *diskWriter) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait blocks until every queued chunk is written or has failed, and
// returns the first error and the chunks that were not written.
func (w *diskWriter) wait() ([]failedChunk, error) {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	failed := w.failed
	w.failed = nil
	return failed, w.err
}

// close stops the writer once the queue is empty.
func (w *diskWriter) close() {
	w.wg.Wait()
	close(w.jobs)
}

// writeAt writes a chunk to the partial file: with direct I/O where the
// file system takes it and the chunk is aligned (no page cache to fill,
// which on some machines costs more CPU than the whole network stack),
// else through the page cache.
func (f *rfile) writeAt(b []byte, off int64) error {
	if f.direct != nil && aligned(b, off) {
		_, err := f.direct.WriteAt(b, off)
		if err == nil {
			f.directWrites++
		}
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		// The file system refused direct I/O after all: stop trying.
		f.direct.Close()
		f.direct = nil
	}
	_, err := f.f.WriteAt(b, off)
	return err
}

func (f *rfile) closeDirect() {
	if f.direct != nil {
		f.direct.Close()
		f.direct = nil
	}
}
