package main

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: heavy test, needs Chromium: runs in make test\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"quiet on success\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestB"}`,
		`{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}`,
		`{"Action":"pass","Package":"p"}`,
		`{"Action":"output","Package":"q","Test":"TestC","Output":"    c_test.go:3: boom\n"}`,
		`{"Action":"fail","Package":"q","Test":"TestC"}`,
		`{"Action":"output","Package":"q","Output":"FAIL\tq\t0.2s\n"}`,
		`{"Action":"fail","Package":"q"}`,
		`{"ImportPath":"r [r.test]","Action":"build-output","Output":"r/x_test.go:1:1: expected 'package'\n"}`,
		`{"ImportPath":"r [r.test]","Action":"build-fail"}`,
		`# s`,
	}, "\n")
	var out strings.Builder
	failed, err := summarize(strings.NewReader(in), &out)
	if err != nil || !failed {
		t.Fatalf("failed=%v err=%v, want a failure reported", failed, err)
	}
	want := "ok  \tp\t0.1s\n    c_test.go:3: boom\nFAIL\tq\t0.2s\nr/x_test.go:1:1: expected 'package'\n# s\n\n1 tests skipped:\n  p TestA: heavy test, needs Chromium: runs in make test\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
