package transfer

import (
	"errors"
	"sync"
)

// ErrPipeClosed is returned by a Pipe end after Close.
var ErrPipeClosed = errors.New("transfer: pipe closed")

// Pipe returns two connected in-memory Conns with bounded queues, for
// tests and for benchmarking the engine without a network.
func Pipe(maxMessage, depth int) (Conn, Conn) {
	ab := make(chan []byte, depth)
	ba := make(chan []byte, depth)
	done := make(chan struct{})
	shared := &pipeShared{done: done}
	return &pipeEnd{in: ba, out: ab, max: maxMessage, sh: shared},
		&pipeEnd{in: ab, out: ba, max: maxMessage, sh: shared}
}

type pipeShared struct {
	once sync.Once
	done chan struct{}
}

type pipeEnd struct {
	in  <-chan []byte
	out chan<- []byte
	max int
	sh  *pipeShared
}

func (p *pipeEnd) Send(b []byte) error {
	if len(b) > p.max {
		return errors.New("transfer: message larger than the pipe's maximum")
	}
	c := append([]byte(nil), b...)
	select {
	case <-p.sh.done:
		return ErrPipeClosed
	default:
	}
	select {
	case p.out <- c:
		return nil
	case <-p.sh.done:
		return ErrPipeClosed
	}
}

// Recv delivers what was sent before a Close first, like a graceful close.
func (p *pipeEnd) Recv() ([]byte, error) {
	select {
	case b := <-p.in:
		return b, nil
	default:
	}
	select {
	case b := <-p.in:
		return b, nil
	case <-p.sh.done:
		select {
		case b := <-p.in:
			return b, nil
		default:
			return nil, ErrPipeClosed
		}
	}
}

func (p *pipeEnd) MaxMessage() int { return p.max }

func (p *pipeEnd) Close() error {
	p.sh.once.Do(func() { close(p.sh.done) })
	return nil
}
