// Package termui draws what `ferry send` and `ferry receive` show in a
// terminal: a QR code, and progress as a live bar on a TTY or as plain
// lines otherwise.
package termui

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/ferrydev/ferry/internal/units"
	"rsc.io/qr"
)

// IsTerminal reports whether w is a character device (a TTY).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// QR writes text as a QR code using half-block characters, two modules
// per character cell, with a quiet zone; dark modules are drawn as spaces
// on a light background so it scans on dark and light terminals alike.
func QR(w io.Writer, text string) error {
	code, err := qr.Encode(text, qr.L)
	if err != nil {
		return err
	}
	const quiet = 2
	n := code.Size
	dark := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < n && y < n && code.Black(x, y)
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bot := dark(x, y), dark(x, y+1)
			switch {
			case !top && !bot:
				b.WriteString("█")
			case top && !bot:
				b.WriteString("▄")
			case !top && bot:
				b.WriteString("▀")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// Progress prints transfer progress. On a TTY it redraws one line; else it
// prints a line at most every interval.
type Progress struct {
	w        io.Writer
	tty      bool
	label    string
	interval time.Duration

	mu       sync.Mutex
	start    time.Time
	startB   int64
	last     time.Time
	samples  []sample
	finished bool
}

type sample struct {
	t time.Time
	b int64
}

// NewProgress returns a progress printer for w.
func NewProgress(w io.Writer, label string) *Progress {
	return &Progress{w: w, tty: IsTerminal(w), label: label, interval: 5 * time.Second}
}

// Update is a transfer.Progress callback.
func (p *Progress) Update(pr transfer.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	now := pr.Time
	if p.start.IsZero() {
		p.start, p.startB = now, pr.Done
	}
	p.samples = append(p.samples, sample{now, pr.Done})
	// Rate over the last few seconds, so it follows changes.
	for len(p.samples) > 2 && now.Sub(p.samples[0].t) > 5*time.Second {
		p.samples = p.samples[1:]
	}
	// Finished means every file verified, not merely every byte received.
	done := pr.Files > 0 && pr.FilesDone == pr.Files
	if !p.tty && !done && now.Sub(p.last) < p.interval {
		return
	}
	if p.tty && !done && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	fmt.Fprint(p.w, p.line(pr))
	if done {
		p.finished = true
		if p.tty {
			fmt.Fprintln(p.w)
		}
	}
}

func (p *Progress) rate() float64 {
	if len(p.samples) < 2 {
		return 0
	}
	a, b := p.samples[0], p.samples[len(p.samples)-1]
	d := b.t.Sub(a.t).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.b-a.b) / d
}

func (p *Progress) line(pr transfer.Progress) string {
	pct := 100.0
	if pr.Total > 0 {
		pct = 100 * float64(pr.Done) / float64(pr.Total)
	}
	rate := p.rate()
	eta := "--:--"
	if rate > 0 && pr.Total > pr.Done {
		eta = formatETA(time.Duration(float64(pr.Total-pr.Done) / rate * float64(time.Second)))
	} else if pr.Done >= pr.Total {
		eta = "0:00"
	}
	stats := fmt.Sprintf("%5.1f%%  %s / %s  %s/s  ETA %s", pct, units.Bytes(pr.Done), units.Bytes(pr.Total), units.Bytes(int64(rate)), eta)
	if !p.tty {
		return fmt.Sprintf("%s: %s  files %d/%d\n", p.label, stats, pr.FilesDone, pr.Files)
	}
	const width = 24
	full := int(pct / 100 * width)
	bar := strings.Repeat("█", full) + strings.Repeat("░", width-full)
	return fmt.Sprintf("\r%s ▕%s▏ %s ", p.label, bar, stats)
}

func formatETA(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
