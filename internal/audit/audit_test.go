package audit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/audit"
)

func TestRecordAndRecent(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := audit.New(&buf, false, 3, func() time.Time { return now })
	for i, ev := range []string{audit.TicketCreated, audit.TicketJoined, audit.TransferCompleted, audit.RelayReleased} {
		l.Record(audit.Event{Event: ev, Ticket: "t", Bytes: int64(i), Names: []string{"secret-plans.pdf"}})
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["event"] != audit.TicketCreated || first["time"] != "2026-01-02T03:04:05Z" {
		t.Fatalf("first record %v", first)
	}
	if strings.Contains(buf.String(), "secret-plans") {
		t.Fatal("file names logged without names enabled")
	}
	rec := l.Recent(10)
	if len(rec) != 3 || rec[0].Event != audit.RelayReleased || rec[2].Event != audit.TicketJoined {
		t.Fatalf("recent = %+v", rec)
	}
}

func TestNamesWhenEnabled(t *testing.T) {
	var buf bytes.Buffer
	l := audit.New(&buf, true, 1, nil)
	l.Record(audit.Event{Event: audit.TransferCompleted, Names: []string{"a.txt"}})
	if !strings.Contains(buf.String(), `"names":["a.txt"]`) {
		t.Fatalf("names missing: %s", buf.String())
	}
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }

func TestWriteErrorsCounted(t *testing.T) {
	l := audit.New(failing{}, false, 1, nil)
	l.Record(audit.Event{Event: audit.TicketCreated})
	if l.WriteErrors() != 1 || len(l.Recent(1)) != 1 {
		t.Fatal("write error not counted or event lost from recent")
	}
}
