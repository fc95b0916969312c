package main

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/ferrydev/ferry/internal/transfer"
)

// jsonOut writes --json events, one object per line: {"event":…,"time":…,…}.
type jsonOut struct {
	mu   sync.Mutex
	w    io.Writer
	on   bool
	last time.Time
}

func newJSONOut(w io.Writer, on bool) *jsonOut { return &jsonOut{w: w, on: on} }

func (j *jsonOut) emit(event string, fields map[string]any) {
	if !j.on {
		return
	}
	m := map[string]any{"event": event, "time": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(append(b, '\n'))
}

// progressEvery spaces --json progress events: often enough for a script
// to act on (at 400 MB/s, 100 MB apart), rarely enough to stay cheap.
const progressEvery = 250 * time.Millisecond

// progress wraps a progress callback to also emit progress events (at
// most one per progressEvery, and the last one).
func (j *jsonOut) progress(next func(transfer.Progress)) func(transfer.Progress) {
	return func(p transfer.Progress) {
		next(p)
		if !j.on {
			return
		}
		j.mu.Lock()
		due := p.Time.Sub(j.last) >= progressEvery || p.Done == p.Total
		if due {
			j.last = p.Time
		}
		j.mu.Unlock()
		if due {
			j.emit("progress", map[string]any{"done": p.Done, "total": p.Total, "resumed": p.Resumed, "files": p.Files, "filesDone": p.FilesDone})
		}
	}
}
