package transfer_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/transfer"
)

// cutAtVerified breaks the receiver's connection when it reports file
// `file` verified: after that message reached the sender (deliver), or
// instead of it (the receiver died between finishing the file and saying
// so).
type cutAtVerified struct {
	transfer.Conn
	file    int
	deliver bool
	once    sync.Once
}

func (c *cutAtVerified) Send(b []byte) error {
	if len(b) > 0 && b[0] == proto.FrameControl {
		if m, err := proto.ParseControl(b); err == nil {
			if v, ok := m.(*proto.Verified); ok && v.File == c.file {
				var err error
				if c.deliver {
					err = c.Conn.Send(b)
				}
				c.once.Do(func() { c.Conn.Close() })
				if err == nil {
					err = errors.New("link cut")
				}
				return err
			}
		}
	}
	return c.Conn.Send(b)
}

var restartFiles = map[string]int{"a": 40 << 10, "b": 40<<10 + 7, "c/d": 40 << 10, "c/e": 33 << 10}

// killBetweenFiles runs a transfer of restartFiles into out until the
// receiver has finished "b" (the second file) and "dies" there, and returns
// the sender (to go on with) and the bytes it sent so far.
func killBetweenFiles(t *testing.T, out, session string, deliver bool) (*transfer.Sender, []transfer.SourceFile) {
	t.Helper()
	src := tree(t, t.TempDir(), restartFiles)
	s := &transfer.Sender{Files: src, MaxChunk: 16 << 10}
	t.Cleanup(func() { s.Close() })
	r1 := &transfer.Receiver{Dir: out, Window: 2, Session: session}
	sc, rc := transfer.Pipe(64<<10, 4)
	serr, rerr := runPair(testCtx(t), s, r1, sc, &cutAtVerified{Conn: rc, file: 1, deliver: deliver})
	if !errors.Is(serr, transfer.ErrConnLost) || !errors.Is(rerr, transfer.ErrConnLost) {
		t.Fatalf("first connection: sender %v, receiver %v", serr, rerr)
	}
	r1.Close()
	if !exists(filepath.Join(out, "b")) || exists(filepath.Join(out, "c/e")) {
		t.Fatal("not cut between the second file and the rest")
	}
	return s, src
}

// TestRestartBetweenFiles: a receiver that dies right after finishing a
// file (whether or not the sender heard "verified") and is started again
// for the same transfer must take the files it finished as done, fetch
// none of them again, and finish the rest, leaving nothing of its own
// behind.
func TestRestartBetweenFiles(t *testing.T) {
	for _, deliver := range []bool{true, false} {
		t.Run(map[bool]string{true: "sender heard verified", false: "sender missed verified"}[deliver], func(t *testing.T) {
			ctx := testCtx(t)
			out := t.TempDir()
			s, src := killBetweenFiles(t, out, "session-1", deliver)
			before := s.SentBytes()
			var progress transfer.Progress
			r2 := &transfer.Receiver{Dir: out, Session: "session-1", Progress: func(p transfer.Progress) { progress = p }}
			defer r2.Close()
			sc, rc := transfer.Pipe(64<<10, 4)
			if serr, rerr := runPair(ctx, s, r2, sc, rc); serr != nil || rerr != nil {
				t.Fatalf("second run: sender %v, receiver %v", serr, rerr)
			}
			checkSame(t, src, out)
			if again, rest := s.SentBytes()-before, int64(restartFiles["c/d"]+restartFiles["c/e"]); again > rest {
				t.Fatalf("the second run was sent %d bytes, more than the %d of the files not finished", again, rest)
			}
			if progress.FilesDone != len(src) || progress.Resumed < int64(restartFiles["a"]+restartFiles["b"]) {
				t.Fatalf("final progress %+v", progress)
			}
			if len(r2.Roots()) != len(src) {
				t.Fatalf("roots %v", r2.Roots())
			}
			noLeftovers(t, out)
		})
	}
}

// TestRestartFinishedFileChanged: a file the first run finished and that
// was modified before the second run is never taken as it is: without Force
// the receiver stops, naming it, and the sender waits; with Force it is
// fetched again.
func TestRestartFinishedFileChanged(t *testing.T) {
	ctx := testCtx(t)
	out := t.TempDir()
	s, src := killBetweenFiles(t, out, "session-1", true)
	edited := filepath.Join(out, "b")
	b, err := os.ReadFile(edited)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1 // same size; the time stamp is put back too
	fi, _ := os.Stat(edited)
	if err := os.WriteFile(edited, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(edited, fi.ModTime(), fi.ModTime())

	r2 := &transfer.Receiver{Dir: out, Session: "session-1"}
	sc, rc := transfer.Pipe(64<<10, 4)
	serr, rerr := runPair(ctx, s, r2, sc, rc)
	r2.Close()
	// Refused, but not declined: the sender waits for another run.
	if !errors.Is(rerr, transfer.ErrReceivedChanged) || !strings.Contains(rerr.Error(), `["b"]`) || !errors.Is(serr, transfer.ErrConnLost) {
		t.Fatalf("sender %v, receiver %v", serr, rerr)
	}
	if got, _ := os.ReadFile(edited); string(got) != string(b) {
		t.Fatal("the changed file was touched")
	}

	before := s.SentBytes()
	r3 := &transfer.Receiver{Dir: out, Session: "session-1", Force: true}
	defer r3.Close()
	sc, rc = transfer.Pipe(64<<10, 4)
	if serr, rerr := runPair(ctx, s, r3, sc, rc); serr != nil || rerr != nil {
		t.Fatalf("with force: sender %v, receiver %v", serr, rerr)
	}
	checkSame(t, src, out)
	if again, want := s.SentBytes()-before, int64(restartFiles["b"]+restartFiles["c/d"]+restartFiles["c/e"]); again > want {
		t.Fatalf("sent %d bytes again, more than the changed and unfinished files' %d", again, want)
	}
	noLeftovers(t, out)
}

// TestRestartOtherSessionRefused: files finished by another transfer (a
// different session) are someone else's: refused without Force, untouched.
func TestRestartOtherSessionRefused(t *testing.T) {
	ctx := testCtx(t)
	out := t.TempDir()
	s, _ := killBetweenFiles(t, out, "session-1", true)
	want, _ := os.ReadFile(filepath.Join(out, "a"))
	r2 := &transfer.Receiver{Dir: out, Session: "session-2"}
	defer r2.Close()
	sc, rc := transfer.Pipe(64<<10, 4)
	serr, rerr := runPair(ctx, s, r2, sc, rc)
	if !errors.Is(rerr, transfer.ErrExists) || !strings.Contains(rerr.Error(), `"a" "b"`) || !errors.Is(serr, transfer.ErrDeclined) {
		t.Fatalf("sender %v, receiver %v", serr, rerr)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "a")); string(got) != string(want) {
		t.Fatal("a finished file was touched")
	}
}

func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".ferry-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}
