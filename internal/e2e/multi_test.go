package e2e_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// Several files, one of them empty, into a folder the receiver picks
// (File System Access; OPFS stands in for the folder), and as separate
// streaming downloads where that API is missing.
func TestSeveralFiles(t *testing.T) {
	for _, sink := range []string{"folder", "download"} {
		t.Run(sink, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_, base, alog := startServerAudited(t, ctx, nil)
			dir := t.TempDir()
			names := []string{"one.bin", "empty.txt", "three.bin"}
			sizes := []int64{3<<20 + 7, 0, 100 << 10}
			var paths, sums []string
			for i, n := range names {
				p, sum := randomFile(t, dir, n, sizes[i])
				paths, sums = append(paths, p), append(sums, sum)
			}
			sb := newBrowser(t, ctx, "sender")
			rb := newBrowser(t, ctx, "receiver")
			dl := t.TempDir()
			if sink == "folder" {
				onNewDocument(t, rb, `window.showDirectoryPicker = async () => navigator.storage.getDirectory();`)
			} else {
				onNewDocument(t, rb, noFSAccess)
				setDownloads(t, rb, dl)
			}
			link := sendFiles(t, sb, base+"/", paths...)
			downloads := chromedp.BrowserEvents(rb, browser.DownloadProgress)
			if err := chromedp.Do(rb, chromedp.Navigate(link)); err != nil {
				t.Fatal(err)
			}
			if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
				t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(rb))
			}
			if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
				t.Fatal(err)
			}
			if st, err := waitState(rb, "done", "error", "canceled"); err != nil || st != "done" {
				t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(rb), diag(sb))
			}
			if sink == "download" {
				done := 0
				for ev, err := range downloads {
					if err != nil {
						t.Fatalf("waiting for downloads: %v", err)
					}
					if ev.State == browser.DownloadProgressStateCompleted {
						if done++; done == len(names) {
							break
						}
					}
					if ev.State == browser.DownloadProgressStateCanceled {
						t.Fatal("a download was canceled")
					}
				}
			}
			for i, n := range names {
				var got string
				if sink == "folder" {
					got = opfsSHA256(t, rb, n)
				} else {
					got = fileSHA256(t, filepath.Join(dl, n))
				}
				if got != sums[i] {
					t.Errorf("%s: received sha256 %s, sent %s", n, got, sums[i])
				}
			}
			for role, e := range waitReports(t, alog) {
				if e.Event != "transfer_completed" || e.Files != len(names) {
					t.Errorf("%s reported %+v", role, e)
				}
			}
		})
	}
}
