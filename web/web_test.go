package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/web"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestRoutes(t *testing.T) {
	h := web.Handler()
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `data-page="send"`},
		{"/r", "text/html; charset=utf-8", `data-page="receive"`},
		{"/app.js", "text/javascript; charset=utf-8", "ferry"},
		{"/worker.js", "text/javascript; charset=utf-8", "blake3"},
		{"/sw.js", "text/javascript; charset=utf-8", "/dl/"},
		{"/style.css", "text/css; charset=utf-8", "font"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		w := get(t, h, "GET", c.path, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
		if w.Header().Get("ETag") == "" || w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: caching headers %v", c.path, w.Header())
		}
	}
}

// A link's ticket lives in the fragment, which never reaches the server;
// the receive page is the same static page whatever follows /r.
func TestReceivePageIgnoresQueryAndConsumesNothing(t *testing.T) {
	h := web.Handler()
	a := get(t, h, "GET", "/r", nil).Body.String()
	b := get(t, h, "GET", "/r?relay=1", nil).Body.String()
	if a != b || a == "" {
		t.Fatal("the receive page differs with a query string")
	}
	if w := get(t, h, "HEAD", "/r", nil); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("HEAD /r: %d, %d body bytes", w.Code, w.Body.Len())
	}
}

func TestNotFound(t *testing.T) {
	h := web.Handler()
	for _, p := range []string{"/index.html", "/r.html", "/r/", "/dl/x/y", "/../web.go", "/app.js.map", "/api/v1/nope", "/dist/app.js"} {
		w := get(t, h, "GET", p, nil)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
		if w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP on the 404", p)
		}
	}
	if w := get(t, h, "POST", "/", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", w.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	w := get(t, web.Handler(), "GET", "/", nil)
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'", "form-action 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "'unsafe-eval'", "http:", "https:", "*"} {
		if strings.Contains(strings.ReplaceAll(csp, "'wasm-unsafe-eval'", ""), bad) {
			t.Errorf("CSP %q allows %q", csp, bad)
		}
	}
	for k, v := range map[string]string{
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestConditionalGet(t *testing.T) {
	h := web.Handler()
	etag := get(t, h, "GET", "/app.js", nil).Header().Get("ETag")
	if w := get(t, h, "GET", "/app.js", map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", w.Code)
	}
}

// The pages load nothing from other origins and run no inline script or
// style (the CSP would block them anyway; this keeps the sources honest).
func TestPagesAreSelfContained(t *testing.T) {
	h := web.Handler()
	for _, p := range []string{"/", "/r"} {
		body := get(t, h, "GET", p, nil).Body.String()
		for _, bad := range []string{"http://", "https://", "<script>", "style=", "onclick="} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
}
