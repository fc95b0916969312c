// Command summary reads `go test -json` on stdin and prints what a plain
// `go test` prints (each package's result, and the whole output of each
// test that failed), then every skipped test with its reason, so that a run
// of the unit tier says precisely what it left out. It exits 1 if any test
// or package failed. `make unit` pipes into it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func summarize(in io.Reader, out io.Writer) (failed bool, err error) {
	outputs := map[string][]string{} // package/test -> its output lines
	var skipped []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line) // build errors and the like come as text
			continue
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "build-output": // compiler errors of a package that did not build
			fmt.Fprint(out, e.Output)
		case "output":
			outputs[key] = append(outputs[key], e.Output)
		case "fail":
			// A test's whole output; a package's holds its FAIL line and
			// anything printed outside tests (a panic, a TestMain error).
			failed = true
			fmt.Fprint(out, strings.Join(outputs[key], ""))
			delete(outputs, key)
		case "skip":
			if e.Test != "" {
				skipped = append(skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason(outputs[key])))
			}
			delete(outputs, key)
		case "pass":
			if e.Test == "" {
				for _, o := range outputs[key] {
					if strings.HasPrefix(o, "ok ") || strings.HasPrefix(o, "ok\t") {
						fmt.Fprint(out, o)
					}
				}
			}
			delete(outputs, key)
		}
	}
	if err := sc.Err(); err != nil {
		return failed, err
	}
	sort.Strings(skipped)
	if len(skipped) > 0 {
		fmt.Fprintf(out, "\n%d tests skipped:\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprintln(out, "  "+s)
		}
	}
	return failed, nil
}

// reason is the message a skipped test gave (the lines after "--- SKIP").
func reason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		if _, after, ok := strings.Cut(t, ": "); ok && strings.Contains(t, ".go:") {
			t = after // drop "file_test.go:12: "
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " ")
}
