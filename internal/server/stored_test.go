package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/servertest"
	"github.com/ferrydev/ferry/internal/stored"
	"github.com/ferrydev/ferry/internal/storedpeer"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
)

// The admin page lists stored transfers and deletes one.
func TestAdminStoredTransfers(t *testing.T) {
	cfg := servertest.Config()
	cfg.AdminToken = "correct-horse-battery"
	cfg.Store.Dir = t.TempDir()
	srv := servertest.Start(t, cfg, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(src, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, _, err := transfer.Collect([]string{src})
	if err != nil {
		t.Fatal(err)
	}
	c := &storedpeer.Client{Base: srv.URL()}
	one := 1
	up, err := c.Upload(ctx, storedpeer.UploadOptions{Files: files, Downloads: &one})
	if err != nil {
		t.Fatal(err)
	}
	admin := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL().String()+path, nil)
		req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, page := admin("GET", "/admin"); resp.StatusCode != 200 || !strings.Contains(page, up.ID) || !strings.Contains(page, "0 / 1") {
		t.Fatalf("admin page (%d) does not list %s", resp.StatusCode, up.ID)
	}
	// Without the token nothing is deleted.
	if resp, err := http.Post(srv.URL().String()+"/admin/stored/"+up.ID+"/delete", "", nil); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous delete: %v %v", resp.StatusCode, err)
	}
	if resp, _ := admin("POST", "/admin/stored/"+up.ID+"/delete"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin?deleted=1" {
		t.Fatalf("delete: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, tk, _ := ticket.ParseLink(up.Link)
	read, _ := stored.ReadToken(tk.Secret[:])
	if _, err := c.Probe(ctx, up.ID, read); !errors.Is(err, storedpeer.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, page := admin("GET", "/admin?deleted=1"); strings.Contains(page, "/admin/stored/"+up.ID+"/delete") || !strings.Contains(page, "was deleted") {
		t.Fatal("the admin page still lists the deleted transfer")
	}
}
