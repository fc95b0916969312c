// Package web serves the embedded browser client: the send page at "/",
// the receive page at "/r" (the ticket stays in the URL fragment, so a GET
// never consumes anything), the service worker for streaming downloads and
// the bundle built from web/src into web/dist.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed all:dist
var dist embed.FS

// CSP allows only this origin. 'wasm-unsafe-eval' lets the BLAKE3 hasher
// (WebAssembly) compile; nothing else is evaluated. connect-src 'self'
// covers the signaling WebSocket; WebRTC is not subject to CSP.
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; worker-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'"

// routes maps request paths to files in dist; anything else is a 404.
var routes = map[string]string{
	"/":            "index.html",
	"/r":           "r.html",
	"/app.js":      "app.js",
	"/worker.js":   "worker.js",
	"/sw.js":       "sw.js",
	"/style.css":   "style.css",
	"/favicon.svg": "favicon.svg",
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the browser client.
func Handler() http.Handler {
	assets := map[string]asset{}
	for route, name := range routes {
		b, err := fs.ReadFile(dist, "dist/"+name)
		if err != nil {
			panic("web: dist is incomplete, run `make web`: " + err.Error())
		}
		sum := sha256.Sum256(b)
		assets[route] = asset{body: b, ctype: contentType(name), etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			h.Set("Cache-Control", "no-store")
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", a.ctype)
		// Revalidate every time (cheap with the ETag): a new server version
		// must never run with a stale page or service worker.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}
