package depot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/depot/boltmeta"
	"github.com/ferrydev/ferry/internal/depot/diskblob"
	"github.com/ferrydev/ferry/internal/stored"
)

func newAPI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	blobs, err := diskblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	meta, err := boltmeta.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	svc, err := depot.New(depot.Config{Blobs: blobs, Meta: meta, MaxSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL + depot.Path
}

type call struct {
	method, path string
	hdr          map[string]string
	body         []byte
	status       int
	code         string // the error code expected, if any
}

func do(t *testing.T, base string, c call) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), c.method, base+c.path, bytes.NewReader(c.body))
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	if c.body == nil {
		req.Body = nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != c.status {
		t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, b, c.status)
	}
	if c.code != "" && !strings.Contains(string(b), `"`+c.code+`"`) {
		t.Fatalf("%s %s: %s, want code %s", c.method, c.path, b, c.code)
	}
	return b
}

// The API refuses what it must, with the codes PROTOCOL.md §6.5 names.
func TestAPIRefusals(t *testing.T) {
	base := newAPI(t)
	read := strings.Repeat("r", 22)
	create := func(v any) []byte { b, _ := json.Marshal(v); return b }
	for _, c := range []call{
		{"POST", "", nil, []byte("{"), 400, "bad_request"},
		{"POST", "", nil, create(map[string]any{"size": 15, "readToken": read}), 400, "bad_request"},
		{"POST", "", nil, create(map[string]any{"size": stored.SealedRecordSize + 3, "readToken": read}), 400, "bad_request"},
		{"POST", "", nil, create(map[string]any{"size": 100, "readToken": "short"}), 400, "bad_request"},
		{"POST", "", nil, create(map[string]any{"size": stored.SealedSize(2 << 30), "readToken": read}), 413, "too_large"},
		{"POST", "", nil, create(map[string]any{"size": 100, "readToken": read, "expire": 365 * 24 * 3600}), 400, "bad_request"},
		{"POST", "", nil, create(map[string]any{"size": 100, "readToken": read, "downloads": 0}), 400, "bad_request"},
		{"POST", "", nil, create(map[string]any{"size": 100, "readToken": read, "id": "AAECAwQFBgcI", "liveToken": "x"}), 403, "forbidden"},
		{"GET", "/AAECAwQFBgcI", nil, nil, 404, "not_found"},
		{"GET", "/..%2Fx/manifest", map[string]string{depot.ReadHeader: read}, nil, 404, "not_found"},
	} {
		do(t, base, c)
	}

	size := stored.SealedSize(128*stored.RecordSize + 1) // two parts: one whole, one of 17 bytes
	var cr depot.Created
	if err := json.Unmarshal(do(t, base, call{"POST", "", nil, create(map[string]any{"size": size, "readToken": read}), 201, ""}), &cr); err != nil {
		t.Fatal(err)
	}
	id, w := "/"+cr.ID, map[string]string{"Authorization": "Bearer " + cr.WriteToken}
	r := map[string]string{depot.ReadHeader: read}
	part0 := bytes.Repeat([]byte{1}, int(depot.PartSize))
	for _, c := range []call{
		// Wrong tokens look like an unknown id.
		{"PUT", id + "/parts/0", map[string]string{"Authorization": "Bearer nope"}, part0, 404, "not_found"},
		{"GET", id + "/manifest", map[string]string{depot.ReadHeader: "nope"}, nil, 404, "not_found"},
		// Still uploading.
		{"GET", id + "/manifest", r, nil, 409, "not_ready"},
		{"GET", id, r, nil, 200, ""},
		// Parts in order and whole.
		{"PUT", id + "/parts/1", w, []byte("0123456789abcdefg"), 409, "conflict"},
		{"PUT", id + "/parts/0", w, part0[:100], 400, "bad_request"},
		{"PUT", id + "/parts/2", w, part0[:16], 400, "bad_request"},
		{"PUT", id + "/manifest", w, []byte("FSM1"), 409, "conflict"},
		{"PUT", id + "/parts/0", w, part0, 200, ""},
		{"PUT", id + "/parts/0", w, part0, 409, "conflict"},
		{"PUT", id + "/parts/1", w, []byte("0123456789abcdefg"), 200, ""},
		{"PUT", id + "/manifest", w, []byte("not a manifest at all, but long enough to look like one.."), 400, "bad_request"},
		{"PUT", id + "/manifest", w, append([]byte("FSM1"), make([]byte, 60)...), 204, ""},
		// Ready: ranges.
		{"GET", id + "/data", map[string]string{depot.ReadHeader: read, "Range": fmt.Sprintf("bytes=%d-", size)}, nil, 416, ""},
		{"GET", id + "/data", map[string]string{depot.ReadHeader: read, "Range": fmt.Sprintf("bytes=%d-", size-17)}, nil, 206, ""},
		{"PUT", id + "/parts/1", w, []byte("0123456789abcdefg"), 409, "conflict"},
		{"POST", id + "/verified", r, nil, 200, ""},
		{"GET", id + "/manifest", r, nil, 410, "used_up"},
		{"DELETE", id, r, nil, 404, "not_found"},
		{"DELETE", id, w, nil, 204, ""},
		{"GET", id, w, nil, 404, "not_found"},
	} {
		do(t, base, c)
	}
}
