package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/sigclient"
)

// TestMetricsBehindProxy: behind a trusted proxy (the test client on
// loopback plays it), a garbled last X-Forwarded-For hop must not make the
// client the proxy, whose address may read /metrics.
func TestMetricsBehindProxy(t *testing.T) {
	cfg := testConfig()
	cfg.TrustedProxies = config.List{"127.0.0.1"}
	cfg.MetricsFrom = config.List{"127.0.0.0/8"}
	srv := start(t, cfg, server.Options{})
	u := srv.URL().String() + "/metrics"
	for _, tc := range []struct {
		xff  string
		want int
	}{
		{"", http.StatusOK}, // the proxy host itself
		{"127.0.0.5", http.StatusOK},
		{"198.51.100.7", http.StatusForbidden},
		{"198.51.100.7:4711", http.StatusForbidden},
		{"unknown", http.StatusForbidden},
		{"127.0.0.1:8080", http.StatusOK},
		{"198.51.100.7, garbage", http.StatusForbidden},
		{"[2001:db8::7]:443", http.StatusForbidden},
	} {
		h := http.Header{}
		if tc.xff != "" {
			h.Set("X-Forwarded-For", tc.xff)
		}
		if code, _ := get(t, nil, u, h); code != tc.want {
			t.Errorf("/metrics with X-Forwarded-For %q: %d, want %d", tc.xff, code, tc.want)
		}
	}
}

// slowClient sends head and then trickles body bytes, one every 20 ms,
// until the server closes the connection; it reports whether the server did
// so before deadline (what it answered is not the point).
func slowClient(t *testing.T, addr, head string, deadline time.Time) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	_ = c.SetReadDeadline(deadline)
	_, err = io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("the server still holds the connection")
	}
	return nil // EOF or reset: closed by the server
}

// TestSlowClients: clients that trickle a request body (or headers) are
// cut off after --read-timeout, while a WebSocket outlives it, and an idle
// kept-alive connection is closed after --idle-timeout.
func TestSlowClients(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 300 * time.Millisecond
	cfg.IdleTimeout = 300 * time.Millisecond
	srv := start(t, cfg, server.Options{})
	addr := srv.URL().Host

	// A WebSocket opened now must outlive several read timeouts.
	ctx := testCtx(t)
	ws, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, err := ws.Create(ctx); err != nil {
		t.Fatal(err)
	}
	wsOpened := time.Now()

	heads := map[string]string{
		"slow body to a form": "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ntoken=",
		"slow body to a page": "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
		"slow body to a GET":  "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
		"slow chunked body":   "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n",
		"slow headers":        "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ",
	}
	deadline := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 10 {
		for name, head := range heads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := slowClient(t, addr, head, deadline); err != nil {
					errs <- fmt.Errorf("%s #%d: %w", name, i, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// An idle kept-alive connection is closed.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("an idle kept-alive connection stays open past --idle-timeout")
	}

	// The WebSocket is still there, well past the read timeout.
	if time.Since(wsOpened) < 3*cfg.ReadTimeout {
		timer := time.NewTimer(3*cfg.ReadTimeout - time.Since(wsOpened))
		<-timer.C // the test is that time passes
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ws.Ping(pctx); err != nil {
		t.Fatalf("WebSocket closed after the read timeout: %v", err)
	}
}

// TestAdminFormTooLarge: the login form is bounded.
func TestAdminFormTooLarge(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = "correct-horse-battery-staple"
	srv := start(t, cfg, server.Options{})
	resp, err := http.PostForm(srv.URL().String()+"/admin/login", url.Values{"token": {strings.Repeat("x", 1<<20)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 1 MiB login form: %d, want 413", resp.StatusCode)
	}
}
