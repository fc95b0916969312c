package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/procstat"
)

// ErrExited means a process ended while something waited for its output.
var ErrExited = errors.New("netlab: process exited")

// Proc is a process running inside a namespace. Its stdout and stderr are
// kept line by line so that tests wait on what it prints, never on time.
type Proc struct {
	Name string
	ns   *NS
	cmd  *exec.Cmd

	Stdout, Stderr *Lines

	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
	stop sync.Once
}

// Lines is a growing list of output lines that can be waited on.
type Lines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	closed  bool
}

func newLines() *Lines { return &Lines{changed: make(chan struct{})} }

func (l *Lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Lines) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
}

// All returns the lines so far.
func (l *Lines) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Tail returns the last n lines joined.
func (l *Lines) Tail(n int) string {
	all := l.All()
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}

// Wait returns the first line (from index from on) that match accepts, and
// its index. It fails when ctx ends or the stream ends without one.
func (l *Lines) Wait(ctx context.Context, from int, match func(string) bool) (string, int, error) {
	for {
		l.mu.Lock()
		lines, changed, closed := l.lines, l.changed, l.closed
		l.mu.Unlock()
		for i := from; i < len(lines); i++ {
			if match(lines[i]) {
				return lines[i], i, nil
			}
		}
		from = max(from, len(lines))
		if closed {
			return "", from, ErrExited
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", from, ctx.Err()
		}
	}
}

// Start runs argv inside the namespace with exactly env as its
// environment. The process is killed (by its pid) when the lab closes, and
// by the kernel if the test binary dies first.
func (n *NS) Start(name string, env []string, argv ...string) *Proc {
	n.lab.t.Helper()
	// `ip netns exec` enters the namespace and execs argv: the pid we get
	// is the program's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, argv...)...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Proc{Name: name, ns: n, cmd: cmd, Stdout: newLines(), Stderr: newLines(), done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		n.lab.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.lab.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.lab.t.Fatalf("netlab: start %s in %s: %v", name, n.Role, err)
	}
	n.lab.mu.Lock()
	n.lab.procs = append(n.lab.procs, p)
	n.lab.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go p.read(stdout, p.Stdout, &wg)
	go p.read(stderr, p.Stderr, &wg)
	go func() {
		wg.Wait() // the pipes are drained before Wait closes them
		p.err = cmd.Wait()
		p.Stdout.finish()
		p.Stderr.finish()
		close(p.done)
	}()
	return p
}

func (p *Proc) read(r io.Reader, into *Lines, wg *sync.WaitGroup) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		into.add(sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Signal sends sig to the process (by pid) if it is still running.
func (p *Proc) Signal(sig os.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after 3 s; it returns once
// the process is gone.
func (p *Proc) Stop() {
	p.stop.Do(func() {
		p.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			p.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
}

// Describe summarizes the process for a failure message.
func (p *Proc) Describe() string {
	state := "running"
	select {
	case <-p.done:
		state = fmt.Sprintf("exited (%v)", p.err)
	default:
	}
	return fmt.Sprintf("%s in %s, pid %d, %s; stderr:\n%s\nstdout:\n%s", p.Name, p.ns.Role, p.Pid(), state, p.Stderr.Tail(60), p.Stdout.Tail(60))
}

// CPU is the CPU time (user and system) the running process used so far,
// from /proc (ok is false once it has exited or where /proc is missing).
func (p *Proc) CPU() (time.Duration, bool) {
	st, err := procstat.Read(p.Pid())
	return st.CPU, err == nil
}

// Usage is the CPU time (user and system) and the peak resident set size
// of the process, once it has exited (ok is false before). `ip netns
// exec` execs the program, so they are the program's own.
func (p *Proc) Usage() (cpu time.Duration, maxRSS int64, ok bool) {
	select {
	case <-p.done:
	default:
		return 0, 0, false
	}
	st := p.cmd.ProcessState
	if st == nil {
		return 0, 0, false
	}
	ru, isRU := st.SysUsage().(*syscall.Rusage)
	if !isRU {
		return st.UserTime() + st.SystemTime(), 0, true
	}
	return st.UserTime() + st.SystemTime(), ru.Maxrss << 10, true // ru_maxrss is in KiB
}
