package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/oidcstub"
	"github.com/ferrydev/ferry/internal/peer"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/internal/servertest"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/internal/ticket"
	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/ferrydev/ferry/internal/turntest"
	"github.com/ferrydev/ferry/turn"
)

func testConfig() config.Serve { return servertest.Config() }

func start(t *testing.T, cfg config.Serve, o server.Options) *server.Server {
	return servertest.Start(t, cfg, o)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randomFile(t *testing.T, name string, size int) transfer.SourceFile {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return transfer.SourceFile{Path: name, Local: p, Size: int64(size)}
}

// goTransfer sends files from a Go sender to a Go receiver through srv.
func goTransfer(t *testing.T, srv *server.Server, files []transfer.SourceFile, sendCfg *peer.Config) (link string, serr, rerr error) {
	t.Helper()
	ctx := testCtx(t)
	links := make(chan string, 1)
	if sendCfg == nil {
		sendCfg = &peer.Config{}
	}
	sendCfg.Server = srv.URL()
	sendCfg.Events.Link = func(l string, _ time.Time) { links <- l }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case link = <-links:
		case <-ctx.Done():
			rerr = ctx.Err()
			return
		}
		base, tk, err := ticket.ParseLink(link)
		if err != nil {
			rerr = err
			return
		}
		_, rerr = peer.Receive(ctx, &peer.Config{Server: base}, base, tk, peer.ReceiveOptions{Dir: t.TempDir()})
	}()
	_, serr = peer.Send(ctx, sendCfg, files, peer.SendOptions{})
	if serr != nil {
		select {
		case links <- "":
		default:
		}
	}
	wg.Wait()
	return link, serr, rerr
}

func get(t *testing.T, c *http.Client, u string, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetrics(t *testing.T) {
	srv := start(t, testConfig(), server.Options{})
	if _, serr, rerr := goTransfer(t, srv, []transfer.SourceFile{randomFile(t, "m.bin", 100_000)}, nil); serr != nil || rerr != nil {
		t.Fatal(serr, rerr)
	}
	// The sender's report reaches the server asynchronously.
	ctx := testCtx(t)
	var code int
	var body string
	for {
		code, body = get(t, nil, srv.URL().String()+"/metrics", nil)
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		if strings.Contains(body, `ferry_transfers_total{outcome="direct"} 1`) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the transfer never showed in /metrics:\n%s", body)
		case <-time.After(10 * time.Millisecond): // polling, bounded by ctx
		}
	}
	for _, want := range []string{
		"ferry_tickets_created_total 1", "ferry_tickets_joined_total 1",
		`ferry_transfers_total{outcome="direct"} 1`, `ferry_transfers_total{outcome="failed"} 0`,
		`ferry_transfer_bytes_total{path="direct"} 100000`, "ferry_signaling_pairing_seconds_count 1",
		"ferry_turn_relayed_bytes_total", "ferry_turn_allocations", "ferry_signaling_relay_seconds_count",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMetricsAccess(t *testing.T) {
	cfg := testConfig()
	cfg.MetricsFrom = config.List{"10.0.0.0/8"}
	cfg.AdminToken = "admin-secret-token"
	srv := start(t, cfg, server.Options{})
	if code, _ := get(t, nil, srv.URL().String()+"/metrics", nil); code != http.StatusForbidden {
		t.Fatalf("/metrics from outside --metrics-from: %d", code)
	}
	if code, _ := get(t, nil, srv.URL().String()+"/metrics", http.Header{"Authorization": {"Bearer admin-secret-token"}}); code != 200 {
		t.Fatalf("/metrics with the admin token: %d", code)
	}
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// waitAudit polls the audit file until n records of kind are there.
func waitAudit(t *testing.T, path, kind string, n int) []map[string]any {
	t.Helper()
	ctx := testCtx(t)
	for {
		recs := readAudit(t, path)
		count := 0
		for _, r := range recs {
			if r["event"] == kind {
				count++
			}
		}
		if count >= n {
			return recs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("audit never had %d %s records: %v", n, kind, recs)
		case <-time.After(10 * time.Millisecond): // polling a file, bounded by ctx
		}
	}
}

func TestAuditLog(t *testing.T) {
	for _, names := range []bool{false, true} {
		t.Run(map[bool]string{false: "no names", true: "names"}[names], func(t *testing.T) {
			cfg := testConfig()
			cfg.Audit = filepath.Join(t.TempDir(), "audit.jsonl")
			cfg.AuditNames = names
			srv := start(t, cfg, server.Options{})
			f := randomFile(t, "quarterly-report.pdf", 5000)
			link, serr, rerr := goTransfer(t, srv, []transfer.SourceFile{f}, nil)
			if serr != nil || rerr != nil {
				t.Fatal(serr, rerr)
			}
			recs := waitAudit(t, cfg.Audit, audit.TransferCompleted, 2)
			kinds := map[string]int{}
			for _, r := range recs {
				kinds[r["event"].(string)]++
			}
			if kinds[audit.TicketCreated] != 1 || kinds[audit.TicketJoined] != 1 {
				t.Fatalf("audit kinds %v", kinds)
			}
			raw, _ := os.ReadFile(cfg.Audit)
			_, tk, _ := ticket.ParseLink(link)
			secret := strings.SplitN(tk.String(), ".", 2)[1]
			if strings.Contains(string(raw), secret) {
				t.Fatal("the ticket secret is in the audit log")
			}
			if strings.Contains(string(raw), "quarterly-report") != names {
				t.Fatalf("file names in the audit log: %v, want %v:\n%s", !names, names, raw)
			}
			for _, r := range recs {
				if r["event"] == audit.TransferCompleted {
					if r["path"] != "direct" || r["bytes"].(float64) != 5000 || r["ticket"] != tk.ID {
						t.Fatalf("completed record %v", r)
					}
				}
				if r["event"] == audit.TicketCreated && (r["ip"] != "127.0.0.1" || r["role"] != "sender") {
					t.Fatalf("created record %v", r)
				}
			}
		})
	}
}

func TestAuditTrustedProxies(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		cfg := testConfig()
		cfg.Audit = filepath.Join(t.TempDir(), "audit.jsonl")
		if trusted {
			cfg.TrustedProxies = config.List{"127.0.0.1/32"}
		}
		srv := start(t, cfg, server.Options{})
		c, err := sigclient.Dial(testCtx(t), srv.URL(), sigclient.Options{Header: http.Header{"X-Forwarded-For": {"198.51.100.77"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Create(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		recs := waitAudit(t, cfg.Audit, audit.TicketCreated, 1)
		want := "127.0.0.1"
		if trusted {
			want = "198.51.100.77"
		}
		if recs[0]["ip"] != want {
			t.Fatalf("trusted=%v: audit ip %v, want %s", trusted, recs[0]["ip"], want)
		}
	}
}

func TestMaxTransferSize(t *testing.T) {
	cfg := testConfig()
	cfg.MaxTransfer = 1000
	srv := start(t, cfg, server.Options{})
	_, err := peer.Send(testCtx(t), &peer.Config{Server: srv.URL()}, []transfer.SourceFile{randomFile(t, "big", 2000)}, peer.SendOptions{})
	if !errors.Is(err, transfer.ErrTooLarge) {
		t.Fatalf("sending over the limit: %v", err)
	}
	if _, serr, rerr := goTransfer(t, srv, []transfer.SourceFile{randomFile(t, "ok", 1000)}, nil); serr != nil || rerr != nil {
		t.Fatalf("sending at the limit: %v %v", serr, rerr)
	}
}

func TestAllowCreateFrom(t *testing.T) {
	cfg := testConfig()
	cfg.AllowCreateFrom = config.List{"10.0.0.0/8"}
	srv := start(t, cfg, server.Options{})
	c, err := sigclient.Dial(testCtx(t), srv.URL(), sigclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(testCtx(t)); !errors.Is(err, sigclient.ErrForbidden) {
		t.Fatalf("create from a network not allowed: %v", err)
	}
}

func TestSenderTokens(t *testing.T) {
	cfg := testConfig()
	cfg.SenderTokens = config.List{"tok-123456"}
	srv := start(t, cfg, server.Options{})
	files := []transfer.SourceFile{randomFile(t, "t.bin", 1000)}
	if _, err := peer.Send(testCtx(t), &peer.Config{Server: srv.URL()}, files, peer.SendOptions{}); !errors.Is(err, sigclient.ErrForbidden) {
		t.Fatalf("send without token: %v", err)
	}
	withToken := &peer.Config{Dial: sigclient.Options{Header: http.Header{"Authorization": {"Bearer tok-123456"}}}}
	// The receiver has no token: receivers never need one.
	if _, serr, rerr := goTransfer(t, srv, files, withToken); serr != nil || rerr != nil {
		t.Fatalf("send with token: %v %v", serr, rerr)
	}
}

func newJarClient(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

func TestOIDCSignIn(t *testing.T) {
	stub, err := oidcstub.Start("ferry-test", "client-secret", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	cfg := testConfig()
	cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCClientSecret = stub.URL, "ferry-test", "client-secret"
	cfg.OIDCAllowed = config.List{"@example.org"}
	cfg.AdminEmails = config.List{"alice@example.org"}
	srv := start(t, cfg, server.Options{})
	base := srv.URL().String()

	// Not signed in: the page learns sign-in is needed, creating is refused.
	client := newJarClient(t)
	_, body := get(t, client, base+"/api/v1/me", nil)
	var me struct {
		SignInRequired bool   `json:"signInRequired"`
		SignInURL      string `json:"signInUrl"`
		User           string `json:"user"`
		MaySend        bool   `json:"maySend"`
	}
	json.Unmarshal([]byte(body), &me)
	if !me.SignInRequired || me.MaySend || me.SignInURL != "/auth/login" {
		t.Fatalf("me before sign-in: %s", body)
	}
	c, _ := sigclient.Dial(testCtx(t), srv.URL(), sigclient.Options{})
	if _, err := c.Create(testCtx(t)); !errors.Is(err, sigclient.ErrForbidden) {
		t.Fatalf("create without sign-in: %v", err)
	}

	// The full redirect dance through the stub provider.
	code, _ := get(t, client, base+"/auth/login?next=/admin", nil)
	if code != 200 {
		t.Fatalf("sign-in ended with %d", code)
	}
	_, body = get(t, client, base+"/api/v1/me", nil)
	json.Unmarshal([]byte(body), &me)
	if me.User != "alice@example.org" || !me.MaySend {
		t.Fatalf("me after sign-in: %s", body)
	}
	u, _ := url.Parse(base)
	cookies := client.Jar.Cookies(u)
	hdr := http.Header{}
	for _, ck := range cookies {
		hdr.Add("Cookie", ck.String())
	}
	signedIn := &peer.Config{Dial: sigclient.Options{Header: hdr}}
	if _, serr, rerr := goTransfer(t, srv, []transfer.SourceFile{randomFile(t, "o.bin", 1000)}, signedIn); serr != nil || rerr != nil {
		t.Fatalf("signed-in send: %v %v", serr, rerr)
	}
	// She is an admin too.
	if code, body := get(t, client, base+"/admin", nil); code != 200 || !strings.Contains(body, "Recent events") {
		t.Fatalf("admin after sign-in: %d", code)
	}

	// Someone outside the allowed domain cannot sign in.
	stub.SetEmail("eve@elsewhere.test")
	other := newJarClient(t)
	if code, body := get(t, other, base+"/auth/login", nil); code != http.StatusForbidden || !strings.Contains(body, "may not send") {
		t.Fatalf("sign-in from another domain: %d %s", code, body)
	}
	// A forged session cookie is worthless.
	forged := http.Header{"Cookie": {"ferry_session=eyJlbWFpbCI6ImV2ZUBleGFtcGxlLm9yZyIsImV4cCI6OTk5OTk5OTk5OX0.AAAA"}}
	c2, _ := sigclient.Dial(testCtx(t), srv.URL(), sigclient.Options{Header: forged})
	if _, err := c2.Create(testCtx(t)); !errors.Is(err, sigclient.ErrForbidden) {
		t.Fatalf("create with a forged cookie: %v", err)
	}
}

func TestAdminPage(t *testing.T) {
	cfg := testConfig()
	cfg.AdminToken = "correct-horse-battery"
	srv := start(t, cfg, server.Options{})
	base := srv.URL().String()
	c, _ := sigclient.Dial(testCtx(t), srv.URL(), sigclient.Options{})
	created, err := c.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	client := newJarClient(t)
	code, body := get(t, client, base+"/admin", nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "Admin token") || strings.Contains(body, created.ID) {
		t.Fatalf("admin without login: %d", code)
	}
	resp, err := client.PostForm(base+"/admin/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp, err = client.PostForm(base+"/admin/login", url.Values{"token": {"correct-horse-battery"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), created.ID) || !strings.Contains(string(b), audit.TicketCreated) {
		t.Fatalf("admin after login: %d\n%s", resp.StatusCode, b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("admin CSP %q", csp)
	}
}

// TestExternalTURN runs the relay as its own service (what `ferry turn`
// does) and a server without a bundled relay that hands out credentials
// for it: the credentials are stateless, so a relay-only transfer works.
func TestExternalTURN(t *testing.T) {
	const secret = "shared-turn-secret"
	relay, err := turn.New(turn.Config{
		ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1", Secret: secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() { stop(); <-done }()

	cfg := testConfig()
	cfg.TURN.Listen = ""
	cfg.TURN.Secret = secret
	port := strconv.Itoa(relay.Port())
	cfg.TURN.URLs = config.List{"turn:127.0.0.1:" + port + "?transport=udp", "turn:127.0.0.1:" + port + "?transport=tcp"}
	srv := start(t, cfg, server.Options{})
	if srv.Relay() != nil {
		t.Fatal("a bundled relay started despite --turn-listen \"\"")
	}
	f := randomFile(t, "via-external-relay.bin", 1<<20)
	ctx := testCtx(t)
	links := make(chan string, 1)
	var rerr error
	var rres *peer.Result
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		base, tk, err := ticket.ParseLink(<-links)
		if err != nil {
			rerr = err
			return
		}
		rres, rerr = peer.Receive(ctx, &peer.Config{Server: base, Options: peer.Options{RelayOnly: true}}, base, tk, peer.ReceiveOptions{Dir: t.TempDir()})
	}()
	sres, serr := peer.Send(ctx, &peer.Config{Server: srv.URL(), Options: peer.Options{RelayOnly: true},
		Events: peer.Events{Link: func(l string, _ time.Time) { links <- l }}}, []transfer.SourceFile{f}, peer.SendOptions{})
	wg.Wait()
	if serr != nil || rerr != nil {
		t.Fatalf("send %v, receive %v", serr, rerr)
	}
	if sres.Path != "relay" || rres.Path != "relay" || relay.RelayedBytes() < 1<<20 {
		t.Fatalf("paths %s/%s, relayed %d bytes", sres.Path, rres.Path, relay.RelayedBytes())
	}
}

// TestTLS serves HTTPS from --tls-cert/--tls-key; peers that trust the
// certificate transfer over wss://, and links say https.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cfg.TLSCert, certPEM, 0o600)
	os.WriteFile(cfg.TLSKey, keyPEM, 0o600)
	srv := start(t, cfg, server.Options{})
	if srv.URL().Scheme != "https" {
		t.Fatalf("URL %s", srv.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, _ := get(t, client, srv.URL().String()+"/healthz", nil); code != 200 {
		t.Fatalf("healthz over TLS: %d", code)
	}
	dial := sigclient.Options{HTTPClient: client}
	ctx := testCtx(t)
	f := randomFile(t, "tls.bin", 200_000)
	links := make(chan string, 1)
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		link := <-links
		if !strings.HasPrefix(link, "https://") {
			rerr = errors.New("link is not https: " + link)
			return
		}
		base, tk, err := ticket.ParseLink(link)
		if err != nil {
			rerr = err
			return
		}
		_, rerr = peer.Receive(ctx, &peer.Config{Server: base, Dial: dial}, base, tk, peer.ReceiveOptions{Dir: t.TempDir()})
	}()
	_, serr := peer.Send(ctx, &peer.Config{Server: srv.URL(), Dial: dial, Events: peer.Events{Link: func(l string, _ time.Time) { links <- l }}},
		[]transfer.SourceFile{f}, peer.SendOptions{})
	wg.Wait()
	if serr != nil || rerr != nil {
		t.Fatalf("send %v, receive %v", serr, rerr)
	}
	// A client that does not trust the certificate gets a clear error.
	if _, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), pool
}

// TestReportsCannotInflateMetrics: peers that flood the server with
// made-up reports (a huge byte count, many times, also before pairing) get
// one transfer counted, with no more bytes than 10 Gbit/s could have moved
// while they were paired, and one audit record per side.
func TestReportsCannotInflateMetrics(t *testing.T) {
	cfg := testConfig()
	cfg.Audit = filepath.Join(t.TempDir(), "audit.jsonl")
	srv := start(t, cfg, server.Options{})
	ctx := testCtx(t)
	dial := func() *sigclient.Conn {
		c, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	fake := proto.ClientMessage{Type: proto.MsgReport, Path: proto.PathRelay, Bytes: 1 << 60, Outcome: proto.OutcomeCompleted, Files: 1}
	flood := func(c *sigclient.Conn) {
		for range 200 {
			if err := c.Send(ctx, fake); err != nil {
				t.Fatal(err)
			}
		}
		// The server handles a connection's messages in order: once "ice"
		// is answered, every report before it has been observed.
		if _, err := c.ICE(ctx); err != nil {
			t.Fatalf("ice: %v", err)
		}
	}
	begin := time.Now()
	s, r := dial(), dial()
	created, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	flood(s) // unpaired: all ignored
	if _, err := r.Join(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitPaired(ctx); err != nil {
		t.Fatal(err)
	}
	flood(s)
	flood(r)
	bound := 1.25e9 * time.Since(begin).Seconds()

	_, body := get(t, nil, srv.URL().String()+"/metrics", nil)
	if !strings.Contains(body, `ferry_transfers_total{outcome="relay"} 1`+"\n") {
		t.Errorf("/metrics does not count exactly one relayed transfer:\n%s", body)
	}
	const prefix = `ferry_transfer_bytes_total{path="relay"} `
	i := strings.Index(body, prefix)
	if i < 0 {
		t.Fatalf("/metrics lacks %s", prefix)
	}
	line, _, _ := strings.Cut(body[i+len(prefix):], "\n")
	if v, err := strconv.ParseFloat(line, 64); err != nil || v > bound {
		t.Errorf("relayed bytes %q, want at most %g", line, bound)
	}
	n := 0
	for _, rec := range readAudit(t, cfg.Audit) {
		if rec["event"] == audit.TransferCompleted {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d transfer_completed audit records, want 2 (one per side)", n)
	}
}

// TestSignalConnsPerIP: --signal-conns-per-ip bounds one address's
// signaling connections; a refused one shows in /metrics, not in the audit
// log (which refusals could flood).
func TestSignalConnsPerIP(t *testing.T) {
	cfg := testConfig()
	cfg.SignalConnsPerIP = 2
	cfg.Audit = filepath.Join(t.TempDir(), "audit.jsonl")
	srv := start(t, cfg, server.Options{})
	ctx := testCtx(t)
	for range 2 {
		c, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Create(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create(ctx); !errors.Is(err, sigclient.ErrRateLimited) {
		t.Fatalf("third connection: %v, want ErrRateLimited", err)
	}
	if _, body := get(t, nil, srv.URL().String()+"/metrics", nil); !strings.Contains(body, `ferry_tickets_rejected_total{reason="connections"} 1`) {
		t.Errorf("/metrics does not count the refused connection:\n%s", body)
	}
	for _, rec := range readAudit(t, cfg.Audit) {
		if rec["event"] != audit.TicketCreated {
			t.Errorf("audit record %v", rec)
		}
	}
}

// TestTURNCapMetrics: allocations refused by a cap show in /metrics by the
// cap that refused them, beside the live count and the global cap.
func TestTURNCapMetrics(t *testing.T) {
	cfg := testConfig()
	cfg.TURN.IPQuota = 1
	srv := start(t, cfg, server.Options{})
	addr := "127.0.0.1:" + strconv.Itoa(srv.TURNPort())
	for i, wantOK := range []bool{true, false} {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		user, pass := turn.Credentials(srv.TURNSecret(), "link"+strconv.Itoa(i), time.Hour, time.Now())
		if _, err := turntest.Allocate(t, conn, addr, user, pass); (err == nil) != wantOK {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	_, body := get(t, nil, srv.URL().String()+"/metrics", nil)
	for _, want := range []string{
		`ferry_turn_quota_refusals_total{cap="address"} 1`, `ferry_turn_quota_refusals_total{cap="global"} 0`,
		"ferry_turn_allocations 1", "ferry_turn_allocations_limit 1000",
		`ferry_turn_auth_failures_total{reason="link_gone"} 0`, "ferry_turn_allocations_revoked_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestTURNCredentialsDieWithLink: the TURN credentials handed out with a
// link allocate while the link waits for its receiver and are refused once
// its sender left, well before they expire.
func TestTURNCredentialsDieWithLink(t *testing.T) {
	srv := start(t, testConfig(), server.Options{})
	ctx := testCtx(t)
	s, err := sigclient.Dial(ctx, srv.URL(), sigclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var user, pass string
	for _, ice := range created.ICEServers {
		if ice.Username != "" {
			user, pass = ice.Username, ice.Credential
		}
	}
	if user == "" {
		t.Fatalf("no TURN credentials in %+v", created.ICEServers)
	}
	addr := "127.0.0.1:" + strconv.Itoa(srv.TURNPort())
	allocate := func() error {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		relay, err := turntest.Allocate(t, conn, addr, user, pass)
		if err == nil {
			relay.Close()
		}
		return err
	}
	if err := allocate(); err != nil {
		t.Fatalf("allocation for a waiting link: %v", err)
	}
	s.Close() // the sender leaves before anyone joined: the link is gone
	deadline := time.Now().Add(20 * time.Second)
	for allocate() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the link's credentials still allocate 20 s after its sender left")
		}
	}
}

// TestSignInFailureWording: a failed sign-in tells the person why in plain
// words, and never echoes provider details or account names.
func TestSignInFailureWording(t *testing.T) {
	stub, err := oidcstub.Start("ferry-test", "client-secret", "eve@elsewhere.test")
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	cfg := testConfig()
	cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCClientSecret = stub.URL, "ferry-test", "client-secret"
	cfg.OIDCAllowed = config.List{"@example.org"}
	srv := start(t, cfg, server.Options{})
	base := srv.URL().String()
	for _, tc := range []struct {
		name, path, want string
	}{
		{"account not allowed", "/auth/login", "Sign-in failed: this account may not send files here. Ask the operator.\n"},
		{"no flow cookie", "/auth/callback?state=x&code=y", "Sign-in failed: the sign-in took too long, or this browser blocks cookies. Try again.\n"},
		{"provider error", "/auth/callback?error=%3Cscript%3E", "Sign-in failed: the sign-in took too long, or this browser blocks cookies. Try again.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, newJarClient(t), base+tc.path, nil)
			if code != http.StatusForbidden || body != tc.want {
				t.Fatalf("%d %q, want 403 %q", code, body, tc.want)
			}
		})
	}
}
