package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
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
	"github.com/ferrydev/ferry/internal/redistest"
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
func slowClient(addr, head string, deadline time.Time) error {
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
				if err := slowClient(addr, head, deadline); err != nil {
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

// clock is a settable clock for the server under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// tokenAttempt tries an admin token one of three ways and returns the status.
func tokenAttempt(t *testing.T, base, how, token, xff string) int {
	t.Helper()
	var req *http.Request
	switch how {
	case "form":
		req, _ = http.NewRequest("POST", base+"/admin/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case "admin":
		req, _ = http.NewRequest("GET", base+"/admin", nil)
		req.Header.Set("Authorization", "Bearer "+token)
	case "metrics":
		req, _ = http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	return resp.StatusCode
}

// TestAdminTokenThrottle: wrong admin tokens are throttled per client
// address on every path that takes the token (login form, bearer on /admin,
// bearer on /metrics); while throttled even the right token is refused
// unchecked, and the budget refills with time.
func TestAdminTokenThrottle(t *testing.T) {
	const token = "correct-horse-battery-staple"
	clk := newClock()
	cfg := testConfig()
	cfg.AdminToken = token
	cfg.MetricsFrom = config.List{"10.0.0.0/8"} // loopback is not privileged here
	srv := start(t, cfg, server.Options{Now: clk.Now})
	base := srv.URL().String()
	for _, how := range []string{"form", "admin", "metrics"} {
		t.Run(how, func(t *testing.T) {
			tries := 0
			for tokenAttempt(t, base, how, "wrong-guess-0123456789", "") != http.StatusTooManyRequests {
				if tries++; tries > 20 {
					t.Fatalf("still guessing after %d wrong tokens", tries)
				}
			}
			if code := tokenAttempt(t, base, how, token, ""); code != http.StatusTooManyRequests {
				t.Fatalf("the right token while throttled: %d, want 429", code)
			}
			clk.Advance(time.Hour)
			want := map[string]int{"form": http.StatusSeeOther, "admin": http.StatusOK, "metrics": http.StatusOK}[how]
			if code := tokenAttempt(t, base, how, token, ""); code != want {
				t.Fatalf("the right token after waiting: %d, want %d", code, want)
			}
		})
	}
}

// TestAdminTokenThrottleGlobal: guesses spread over many client addresses
// (through a trusted proxy) hit a global bound.
func TestAdminTokenThrottleGlobal(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = "correct-horse-battery-staple"
	cfg.TrustedProxies = config.List{"127.0.0.1"}
	srv := start(t, cfg, server.Options{Now: newClock().Now})
	base := srv.URL().String()
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("1000 guesses from 1000 addresses, none throttled")
		}
		xff := fmt.Sprintf("198.51.%d.%d", 100+i/250, 1+i%250)
		if tokenAttempt(t, base, "admin", "wrong-guess-0123456789", xff) == http.StatusTooManyRequests {
			break
		}
	}
	if code := tokenAttempt(t, base, "form", "wrong-guess-0123456789", "203.0.113.99"); code != http.StatusTooManyRequests {
		t.Fatalf("a fresh address after the global bound: %d, want 429", code)
	}
}

// TestHSTS: served over HTTPS, responses ask browsers to stay on HTTPS.
func TestHSTS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = dir+"/cert.pem", dir+"/key.pem"
	if err := os.WriteFile(cfg.TLSCert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.TLSKey, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := start(t, cfg, server.Options{})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, path := range []string{"/", "/healthz", "/admin"} {
		resp, err := client.Get(srv.URL().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
			t.Errorf("%s over HTTPS: Strict-Transport-Security %q", path, hsts)
		}
	}
	// Plain HTTP must not send it (browsers ignore it there anyway).
	plain := start(t, testConfig(), server.Options{})
	resp, err := http.Get(plain.URL().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "" {
		t.Errorf("plain HTTP sends Strict-Transport-Security %q", hsts)
	}
}

// TestSharedRateLimits: two instances on one Redis grant a client the
// create and join limits once, not once each.
func TestSharedRateLimits(t *testing.T) {
	rs := redistest.Start(t)
	clk := newClock()
	cfg := testConfig()
	cfg.Redis = rs.URL()
	cfg.CreateLimit, cfg.JoinLimit = 3, 2
	a := start(t, cfg, server.Options{Now: clk.Now})
	b := start(t, cfg, server.Options{Now: clk.Now})
	ctx := testCtx(t)
	create := func(srv *server.Server) error {
		c, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Create(ctx)
		return err
	}
	join := func(srv *server.Server) error {
		c, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Join(ctx, "AAAAAAAAAAAA")
		return err
	}
	for i, srv := range []*server.Server{a, b, a} {
		if err := create(srv); err != nil {
			t.Fatalf("create %d within the limit: %v", i, err)
		}
	}
	for _, srv := range []*server.Server{b, a} {
		if err := create(srv); !errors.Is(err, sigclient.ErrRateLimited) {
			t.Fatalf("a fourth create across two instances: %v, want rate limited", err)
		}
	}
	for _, srv := range []*server.Server{a, b} {
		if err := join(srv); errors.Is(err, sigclient.ErrRateLimited) {
			t.Fatalf("join within the limit: %v", err)
		}
	}
	if err := join(b); !errors.Is(err, sigclient.ErrRateLimited) {
		t.Fatalf("a third join across two instances: %v, want rate limited", err)
	}
	clk.Advance(time.Minute)
	if err := create(b); err != nil {
		t.Fatalf("create after a minute: %v", err)
	}
}

// TestSenderTokenThrottle: guessing --sender-tokens when creating a link is
// throttled too (the create limit only applies after the token check).
func TestSenderTokenThrottle(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.SenderTokens = config.List{"sender-token-0123456789"}
	cfg.CreateLimit = 0
	srv := start(t, cfg, server.Options{Now: clk.Now})
	ctx := testCtx(t)
	create := func(token string) error {
		c, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{Header: http.Header{"Authorization": {"Bearer " + token}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Create(ctx)
		return err
	}
	for tries := 0; ; tries++ {
		if tries > 20 {
			t.Fatalf("still guessing sender tokens after %d tries", tries)
		}
		err := create("wrong-guess-0123456789")
		if errors.Is(err, sigclient.ErrRateLimited) {
			break
		}
		if !errors.Is(err, sigclient.ErrForbidden) {
			t.Fatalf("wrong sender token: %v", err)
		}
	}
	if err := create("sender-token-0123456789"); !errors.Is(err, sigclient.ErrRateLimited) {
		t.Fatalf("the right token while throttled: %v, want rate limited", err)
	}
	clk.Advance(time.Hour)
	if err := create("sender-token-0123456789"); err != nil {
		t.Fatalf("the right token after waiting: %v", err)
	}
}
