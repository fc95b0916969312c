package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/config"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the flags tables in README.md")

// flagTable renders the flags of `ferry cmd` as the README shows them.
func flagTable(t *testing.T, cmd string) []config.Row {
	t.Helper()
	var got *flag.FlagSet
	var out bytes.Buffer
	run(context.Background(), []string{cmd, "--help"}, stdio{in: strings.NewReader(""), out: &out, err: &out,
		flagSets: func(_ string, fs *flag.FlagSet) { got = fs }})
	if got == nil {
		t.Fatalf("ferry %s --help showed no flags", cmd)
	}
	return config.Table(got)
}

// TestREADMEFlags keeps the README's flags tables equal to what the
// commands really accept (go test ./cmd/ferry -run README -update-readme).
func TestREADMEFlags(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	send := flagTable(t, "send")
	inSend := map[string]bool{}
	for _, r := range send {
		inSend[r.Flag] = true
	}
	var receiveOnly []config.Row
	for _, r := range flagTable(t, "receive") {
		if !inSend[r.Flag] {
			receiveOnly = append(receiveOnly, r)
		}
	}
	sections := map[string][]config.Row{
		"serve": flagTable(t, "serve"), "send": send, "receive-only": receiveOnly, "turn": flagTable(t, "turn"),
	}
	text := string(readme)
	for name, rows := range sections {
		begin, end := "<!-- flags:"+name+" -->\n", "<!-- /flags:"+name+" -->"
		i, j := strings.Index(text, begin), strings.Index(text, end)
		if i < 0 || j < i {
			t.Fatalf("README has no %q … %q section", begin, end)
		}
		want := config.Markdown(rows)
		if got := text[i+len(begin) : j]; got != want {
			if !*updateReadme {
				t.Errorf("README flags table for %s is out of date; run: go test ./cmd/ferry -run README -update-readme", name)
				continue
			}
			text = text[:i+len(begin)] + want + text[j:]
		}
	}
	if *updateReadme {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
