package e2e_test

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// makeTree writes a folder "tree" under dir: 200 small files (0 to 48 KiB,
// a few empty, spread over nested folders, some names with spaces and
// non-ASCII letters) and one big file of bigSize bytes. It returns the
// folder and each file's SHA-256 by its path relative to dir
// ("tree/...", as the receiver names them).
func makeTree(t testing.TB, dir string, bigSize int64) (string, map[string]string) {
	t.Helper()
	root := filepath.Join(dir, "tree")
	want := map[string]string{}
	rng := mrand.New(mrand.NewPCG(1, 2))
	folders := []string{"", "docs", "docs/2025", "photos", "photos/été", "photos/raw files", "src/a/b/c", "src/a/d", "misc", "misc/empty-ish"}
	for i := range 200 {
		rel := filepath.Join(folders[i%len(folders)], fmt.Sprintf("file %03d.dat", i))
		if i%37 == 5 {
			rel = filepath.Join(folders[i%len(folders)], fmt.Sprintf("ünïcödé-%03d.txt", i))
		}
		size := rng.IntN(48 << 10)
		if i%50 == 7 {
			size = 0
		}
		_, sum := writeRandom(t, filepath.Join(root, rel), int64(size))
		want[filepath.ToSlash(filepath.Join("tree", rel))] = sum
	}
	_, sum := writeRandom(t, filepath.Join(root, "big", "movie.bin"), bigSize)
	want["tree/big/movie.bin"] = sum
	return root, want
}

func writeRandom(t testing.TB, p string, size int64) (string, string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, hex.EncodeToString(h.Sum(nil))
}

// sendFolder opens the send page and picks a whole folder (the page's
// folder input, webkitdirectory); it returns the link.
func sendFolder(t testing.TB, b context.Context, url, folder string) string {
	t.Helper()
	if err := chromedp.Do(b, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open send page: %v", err)
	}
	if err := chromedp.Do(b, chromedp.SetUploadFiles(chromedp.ID("dir-input"), []string{folder})); err != nil {
		t.Fatalf("pick folder: %v", err)
	}
	return waitLink(t, b)
}

func waitLink(t testing.TB, b context.Context) string {
	t.Helper()
	link, err := chromedp.Run(b, chromedp.Poll[string](
		`(() => { const v = document.getElementById("link").value; if (v) return v; const e = document.getElementById("error"); if (!e.hidden) throw new Error(e.textContent); return null; })()`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatalf("no link on the send page: %v (status %q)", err, text(b, "status"))
	}
	return link
}

// opfsTreeSHA256 hashes every file in the page's origin-private file
// system (which stands in for the folder the receiver picked), by path.
func opfsTreeSHA256(t testing.TB, b context.Context) map[string]string {
	t.Helper()
	js := `(async () => {
  const out = {};
  const walk = async (dir, prefix) => {
    for await (const [name, h] of dir.entries()) {
      if (h.kind === "directory") { await walk(h, prefix + name + "/"); continue; }
      const f = await h.getFile();
      const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
      out[prefix + name] = Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
    }
  };
  await walk(await navigator.storage.getDirectory(), "");
  return JSON.stringify(out);
})()`
	s, err := chromedp.Run(b, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("hash the received folder: %v", err)
	}
	got := map[string]string{}
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// zipSHA256 opens a zip archive and hashes every entry; every entry must
// be stored (no compression), as the page writes them.
func zipSHA256(t testing.TB, p string) map[string]string {
	t.Helper()
	z, err := zip.OpenReader(p)
	if err != nil {
		t.Fatalf("open the received zip: %v", err)
	}
	defer z.Close()
	got := map[string]string{}
	for _, f := range z.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want STORE", f.Name, f.Method)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil { // also checks the CRC-32
			t.Fatalf("%s: %v", f.Name, err)
		}
		r.Close()
		if _, dup := got[f.Name]; dup {
			t.Errorf("%s is in the archive twice", f.Name)
		}
		got[f.Name] = hex.EncodeToString(h.Sum(nil))
	}
	return got
}

// compareTrees checks that got holds exactly the files of want, each with
// the same hash.
func compareTrees(t testing.TB, got, want map[string]string) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	bad := 0
	for _, n := range names {
		switch g, ok := got[n]; {
		case !ok:
			t.Errorf("%s was not received", n)
			bad++
		case g != want[n]:
			t.Errorf("%s: received sha256 %s, sent %s", n, g, want[n])
			bad++
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s was received but never sent", n)
			bad++
		}
	}
	if bad == 0 {
		t.Logf("all %d files match by SHA-256", len(want))
	}
}

// layoutShiftObserver records the page's cumulative layout shift (shifts
// not caused by the person's own input), for the no-layout-shift checks.
const layoutShiftObserver = `window.__cls = 0; window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.hadRecentInput) continue;
    window.__cls += e.value;
    window.__shifts.push({ value: e.value, state: document.body && document.body.dataset.state,
      nodes: (e.sources || []).map((s) => s.node && (s.node.id || s.node.className || s.node.nodeName)) });
  }
}).observe({ type: "layout-shift", buffered: true });
// The page's main thread stays free while the worker hashes and writes.
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push(Math.round(e.duration));
}).observe({ type: "longtask", buffered: true });
// Anything the Content-Security-Policy blocked.
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));`

func layoutShift(t testing.TB, b context.Context) (float64, string) {
	t.Helper()
	cls, err := chromedp.Run(b, chromedp.Evaluate[float64](`window.__cls`))
	if err != nil {
		t.Fatalf("read layout shift: %v", err)
	}
	s, _ := chromedp.Run(b, chromedp.Evaluate[string](`JSON.stringify(window.__shifts)`))
	return cls, s
}

type folderCase struct {
	sink string // "folder" (directory picker) or "zip" (service-worker download)
}

// runFolder sends a tree of 200 small files and one 100 MiB file from one
// browser to another and checks every file's hash on arrival.
func runFolder(t *testing.T, fc folderCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	began := time.Now()
	_, base, alog := startServerAudited(t, nil)
	folder, want := makeTree(t, t.TempDir(), 100<<20)
	var total int64
	for n := range want {
		fi, err := os.Stat(filepath.Join(filepath.Dir(folder), filepath.FromSlash(n)))
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	sb := newBrowser(t, ctx, "sender")
	rb := newBrowser(t, ctx, "receiver")
	onNewDocument(t, sb, layoutShiftObserver)
	onNewDocument(t, rb, layoutShiftObserver)
	dl := t.TempDir()
	if fc.sink == "folder" {
		onNewDocument(t, rb, `window.showDirectoryPicker = async () => navigator.storage.getDirectory();`)
	} else {
		onNewDocument(t, rb, noFSAccess)
		setDownloads(t, rb, dl)
	}
	// Every request of both pages goes to this server (no third parties).
	var requests []<-chan string
	for _, b := range []context.Context{sb, rb} {
		ch := make(chan string, 4096)
		requests = append(requests, ch)
		go func() {
			for ev, err := range chromedp.Events(b, network.RequestWillBeSent) {
				if err != nil {
					return
				}
				select {
				case ch <- ev.Request.URL:
				default:
				}
			}
		}()
	}
	link := sendFolder(t, sb, base+"/", folder)
	if got := text(sb, "files-title"); got != "tree" {
		t.Errorf("send page names the folder %q, want %q", got, "tree")
	}
	downloads := chromedp.BrowserEvents(rb, browser.DownloadProgress)
	openLink(t, rb, link)
	if st, err := waitState(rb, "review", "error"); err != nil || st != "review" {
		t.Fatalf("receiver state %q (%v)\nreceiver: %s", st, err, diag(rb))
	}
	// The receiver sees every name, the sizes and the total before accepting.
	rows, err := chromedp.Run(rb, chromedp.Evaluate[int](`document.querySelectorAll("#file-list .file-name").length`))
	if err != nil || rows != len(want) {
		t.Errorf("the offer lists %d files (%v), want %d", rows, err, len(want))
	}
	if meta := text(rb, "files-meta"); !contains(meta, "201 files") {
		t.Errorf("offer summary %q does not say 201 files", meta)
	}
	mode := text(rb, "offer-mode")
	t.Logf("offer: %s — %s", text(rb, "files-meta"), mode)
	if fc.sink == "zip" && !contains(mode, "tree.zip") {
		t.Errorf("the offer does not say the folder arrives as tree.zip: %q", mode)
	}
	start := time.Now()
	if err := chromedp.Do(rb, chromedp.Click(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}
	if st, err := waitState(rb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("receiver ended in %q (%v)\nreceiver: %s\nsender: %s", st, err, diag(rb), diag(sb))
	}
	elapsed := time.Since(start)
	if st, err := waitState(sb, "done", "error", "canceled"); err != nil || st != "done" {
		t.Fatalf("sender ended in %q (%v): %s", st, err, text(sb, "error"))
	}
	t.Logf("%d files, %d bytes in %s: %.1f MB/s", len(want), total, elapsed.Round(time.Millisecond), float64(total)/1e6/elapsed.Seconds())

	switch fc.sink {
	case "folder":
		compareTrees(t, opfsTreeSHA256(t, rb), want)
	case "zip":
		for ev, err := range downloads {
			if err != nil {
				t.Fatalf("waiting for the download: %v", err)
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				break
			}
			if ev.State == browser.DownloadProgressStateCanceled {
				t.Fatal("the browser canceled the download")
			}
		}
		compareTrees(t, zipSHA256(t, filepath.Join(dl, "tree.zip")), want)
	}
	// Both pages show every file verified, with its BLAKE3 root.
	for name, b := range map[string]context.Context{"sender": sb, "receiver": rb} {
		n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#file-list .file[data-state="verified"]').length`))
		if err != nil || n != len(want) {
			t.Errorf("%s shows %d files verified (%v), want %d", name, n, err, len(want))
		}
		roots, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("roots-text").textContent`))
		if c := countLines(roots); c != len(want) {
			t.Errorf("%s lists %d BLAKE3 roots, want %d", name, c, len(want))
		}
		if v, _ := chromedp.Run(b, chromedp.Evaluate[[]string](`window.__cspViolations`)); len(v) > 0 {
			t.Errorf("%s: Content-Security-Policy violations: %v", name, v)
		}
		if lt, _ := chromedp.Run(b, chromedp.Evaluate[[]int](`window.__longTasks`)); len(lt) > 0 {
			longest := slices.Max(lt)
			t.Logf("%s: %d main-thread tasks over 50 ms, the longest %d ms", name, len(lt), longest)
			if longest > 1000 {
				t.Errorf("%s: the page was unresponsive for %d ms", name, longest)
			}
		} else {
			t.Logf("%s: no main-thread task over 50 ms", name)
		}
		if cls, shifts := layoutShift(t, b); cls > 0.01 {
			t.Errorf("%s: cumulative layout shift %.3f: %s", name, cls, shifts)
		} else {
			t.Logf("%s: cumulative layout shift %.4f %s", name, cls, shifts)
		}
	}
	for i, ch := range requests {
		n := 0
		for len(ch) > 0 {
			u := <-ch
			n++
			if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, "blob:") {
				t.Errorf("%s page requested %s", []string{"send", "receive"}[i], u)
			}
		}
		t.Logf("%s page: %d requests, all to %s", []string{"send", "receive"}[i], n, base)
	}
	if title, _ := chromedp.Run(rb, chromedp.Evaluate[string](`document.title`)); !strings.Contains(title, "Received and verified") {
		t.Errorf("receive page title %q", title)
	}
	// Both sides' roots agree.
	sr, _ := chromedp.Run(sb, chromedp.Evaluate[string](`document.getElementById("roots-text").textContent`))
	rr, _ := chromedp.Run(rb, chromedp.Evaluate[string](`document.getElementById("roots-text").textContent`))
	if sr != rr {
		t.Errorf("sender and receiver show different roots")
	}
	for role, e := range waitReports(t, alog) {
		if e.Event != "transfer_completed" || e.Files != len(want) || e.Bytes != total {
			t.Errorf("%s reported %+v", role, e)
		}
	}
	mbps, err := chromedp.Run(rb, chromedp.Evaluate[float64](`ferryDebug.bench(64)`, chromedp.EvalAwaitPromise))
	if err != nil || mbps < 50 {
		t.Fatalf("BLAKE3 in the browser worker: %.0f MB/s (%v)", mbps, err)
	}
	t.Logf("BLAKE3 in the receiver's worker: %.0f MB/s; whole test %s", mbps, time.Since(began).Round(time.Millisecond))
}

func countLines(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			n++
		}
	}
	return n
}

// A folder into a folder the receiver picks (File System Access; OPFS
// stands in for it): relative paths kept, every hash checked.
func TestFolderToFolder(t *testing.T) { runFolder(t, folderCase{sink: "folder"}) }

// A folder where directories cannot be written: one streamed .zip download
// (through the service worker), opened here with archive/zip.
func TestFolderAsZip(t *testing.T) { runFolder(t, folderCase{sink: "zip"}) }
