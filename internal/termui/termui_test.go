package termui_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/termui"
	"github.com/ferrydev/ferry/internal/transfer"
)

func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer // not a TTY: plain lines, rate limited
	p := termui.NewProgress(&buf, "receiving")
	start := time.Unix(1000, 0)
	for i := range 11 {
		p.Update(transfer.Progress{Total: 100e6, Done: int64(i) * 10e6, Files: 2, FilesDone: i / 10, Time: start.Add(time.Duration(i) * time.Second)})
	}
	p.Update(transfer.Progress{Total: 100e6, Done: 100e6, Files: 2, FilesDone: 2, Time: start.Add(11 * time.Second)})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// t=0, t=5 and t=10 (every 5 s), then done once.
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[1], "50.0%") || !strings.Contains(lines[1], "10.0 MB/s") || !strings.Contains(lines[1], "ETA 0:05") {
		t.Errorf("middle line %q", lines[1])
	}
	if !strings.Contains(lines[3], "100.0%") || !strings.Contains(lines[3], "files 2/2") {
		t.Errorf("last line %q", lines[3])
	}
	if strings.Contains(buf.String(), "\r") {
		t.Error("carriage returns written to a non-terminal")
	}
}

func TestQR(t *testing.T) {
	var buf bytes.Buffer
	if err := termui.QR(&buf, "https://ferry.example/r#AAECAwQFBgcI.AAECAwQFBgcICQoLDA0ODw"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	w := len([]rune(lines[0]))
	for _, l := range lines {
		if len([]rune(l)) != w {
			t.Fatal("ragged QR rows")
		}
	}
	// Two modules per text row: about half as many rows as columns.
	if w < 25 || len(lines) < w/2-1 || len(lines) > w/2+2 {
		t.Fatalf("%d rows of %d columns", len(lines), w)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"a.txt":                      "a.txt",
		"photos/2024/Ünïcödé 日本.jpg": "photos/2024/Ünïcödé 日本.jpg",
		"family 👨\u200d👩\u200d👧.png": "family 👨\u200d👩\u200d👧.png",
		`C:\Users\me\a.txt`:          `C:\Users\me\a.txt`,
		"invoice\u202efdp.exe":       `"invoice\u202efdp.exe"`,
		"a\x1b[2Jb":                  `"a\x1b[2Jb"`,
		"a\u009b2Jb":                 `"a\u009b2Jb"`,
		"line\nbreak":                `"line\x0abreak"`,
		"quote\"and\\\u200b":         `"quote\"and\\\u200b"`,
		"bad\xffutf8":                `"bad\xffutf8"`,
		"tag\U000e0041":              `"tag\U000e0041"`,
		"a\u3164b":                   `"a\u3164b"`,
	} {
		if got := termui.Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
	}
}
