// Package vectors loads and (with -update) rewrites the shared test vectors in
// testdata/vectors, which the TypeScript tests check too.
package vectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the absolute path of testdata/vectors.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "vectors")
}

// Check compares got (marshalled as indented JSON) with the committed vector
// file name; with update set it rewrites the file instead.
func Check(t testing.TB, name string, got any, update bool) {
	t.Helper()
	js, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	path := filepath.Join(Dir(), name)
	if update {
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if string(want) != string(js) {
		t.Fatalf("%s differs from what the code computes now; if the change is intended, run go test -update and update the TypeScript side too", path)
	}
}
