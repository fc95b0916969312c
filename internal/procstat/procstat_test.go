package procstat

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want Stat
		err  bool
	}{
		{"spaces and a paren in the name", "42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 150 25 3 4 20 0 1 0 5 1000 10",
			Stat{PPID: 7, CPU: 1750 * time.Millisecond, Children: 70 * time.Millisecond}, false},
		{"short", "42 (a) S 7 42", Stat{}, true},
		{"no name", "42 a S 7", Stat{}, true},
		{"not a number", "42 (a) S x 42 42 0 -1 4194560 100 0 0 0 150 25 3 4 20", Stat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse([]byte(tc.line))
			if (err != nil) != tc.err || !errors.Is(err, ErrFormat) && tc.err || got != tc.want {
				t.Fatalf("parse = %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// Read sees this process: its parent, and CPU time that only grows.
func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != os.Getppid() {
		t.Fatalf("PPID %d, want %d", s.PPID, os.Getppid())
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	s2, err := Read(os.Getpid())
	if err != nil || s2.CPU < s.CPU {
		t.Fatalf("CPU %v then %v (%v)", s.CPU, s2.CPU, err)
	}
}

// ReadThread sees this process's main thread (its tid is its pid), whose
// CPU time is at most the whole process's.
func TestReadThread(t *testing.T) {
	pid := os.Getpid()
	th, err := ReadThread(pid, pid)
	if err != nil {
		t.Fatal(err)
	}
	all, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	if th.PPID != os.Getppid() || th.CPU > all.CPU {
		t.Fatalf("main thread %+v, process %+v", th, all)
	}
	if _, err := ReadThread(pid, -1); err == nil {
		t.Fatal("a thread that does not exist was read")
	}
}
