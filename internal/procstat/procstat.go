// Package procstat reads a Linux process's CPU times and parent from
// /proc/PID/stat, for the benchmarks' per-process CPU figures.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrFormat means /proc/PID/stat did not look as proc(5) says.
var ErrFormat = errors.New("procstat: unexpected /proc/PID/stat format")

// clockTick is the unit of the file's times (USER_HZ: 100 in Linux's ABI).
const clockTick = 10 * time.Millisecond

// Stat is what the benchmarks use of a process's stat line.
type Stat struct {
	PPID int
	// CPU is user and system time, all threads; Children that of its
	// children that exited and were reaped (cutime and cstime).
	CPU, Children time.Duration
}

// Read reads pid's stat line.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return parse(b)
}

// ReadThread reads the stat line of thread tid of process pid, whose CPU
// is that thread's alone.
func ReadThread(pid, tid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return Stat{}, err
	}
	return parse(b)
}

func parse(b []byte) (Stat, error) {
	// The command name (field 2) may hold spaces: count from its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, ErrFormat
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return Stat{}, ErrFormat
	}
	// f[0] is field 3 (state): ppid is field 4, utime, stime, cutime and
	// cstime fields 14 to 17.
	var n [5]int64
	var err error
	for k, idx := range []int{1, 11, 12, 13, 14} {
		if n[k], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return Stat{}, fmt.Errorf("%w: %w", ErrFormat, err)
		}
	}
	return Stat{
		PPID:     int(n[0]),
		CPU:      time.Duration(n[1]+n[2]) * clockTick,
		Children: time.Duration(n[3]+n[4]) * clockTick,
	}, nil
}
