package signaling_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/internal/ratelimit"
	"github.com/ferrydev/ferry/internal/sigclient"
	"github.com/ferrydev/ferry/signaling"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t      *testing.T
	ctx    context.Context
	base   *url.URL
	clock  *clock
	mu     sync.Mutex
	events []signaling.Event
	ttls   []time.Duration // of each ICE credential handed out
	stop   func()          // ends the server's Run and waits for it
}

func (e *env) observed(kind string) []signaling.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []signaling.Event
	for _, ev := range e.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func newEnv(t *testing.T, mod func(*signaling.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, clock: &clock{t: time.Unix(1_800_000_000, 0)}}
	cfg := signaling.Config{
		Store:     signaling.NewMemoryStore(e.clock.Now),
		Instance:  "test",
		TicketTTL: time.Hour,
		Now:       e.clock.Now,
		ICE: func(_ *http.Request, id, role string, ttl time.Duration) []proto.ICEServer {
			e.mu.Lock()
			e.ttls = append(e.ttls, ttl)
			e.mu.Unlock()
			return []proto.ICEServer{{URLs: []string{"turn:example:3478"}, Username: id + ":" + role, Credential: "c"}}
		},
		Observe: func(ev signaling.Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := signaling.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(runCtx) }()
	<-srv.Ready()
	hs := httptest.NewServer(srv)
	e.stop = func() {
		stop()
		<-done
	}
	t.Cleanup(func() {
		e.stop()
		hs.Close()
	})
	e.base, _ = url.Parse(hs.URL)
	return e
}

func (e *env) dial() *sigclient.Conn {
	e.t.Helper()
	c, err := sigclient.Dial(e.ctx, e.base, sigclient.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// pairUp creates a ticket, joins it and waits until both are paired.
func (e *env) pairUp() (s, r *sigclient.Conn, id string) {
	e.t.Helper()
	s = e.dial()
	created, err := s.Create(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(created.ID) != 12 || created.Expires != e.clock.Now().Add(time.Hour).Unix() {
		e.t.Fatalf("created = %+v", created)
	}
	if len(created.ICEServers) != 1 || created.ICEServers[0].Username != created.ID+":S" {
		e.t.Fatalf("ice servers = %+v", created.ICEServers)
	}
	r = e.dial()
	if _, err := r.Join(e.ctx, created.ID); err != nil {
		e.t.Fatal(err)
	}
	if err := s.WaitPaired(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := r.WaitPaired(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return s, r, created.ID
}

func TestPairAndRelay(t *testing.T) {
	e := newEnv(t, nil)
	s, r, _ := e.pairUp()
	for i := range 20 {
		msg := bytes.Repeat([]byte{byte(i)}, 100+i)
		if err := s.SendFrame(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.NextFrame(e.ctx)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("frame %d: %v", i, err)
		}
		if err := r.SendFrame(e.ctx, msg[:1]); err != nil {
			t.Fatal(err)
		}
		if got, err := s.NextFrame(e.ctx); err != nil || !bytes.Equal(got, msg[:1]) {
			t.Fatalf("frame back %d: %v", i, err)
		}
	}
	if n := len(e.observed(signaling.EventPaired)); n != 1 {
		t.Fatalf("%d paired events", n)
	}
}

func TestHandshakeThroughServer(t *testing.T) {
	e := newEnv(t, nil)
	s, r, id := e.pairUp()
	secret := bytes.Repeat([]byte{9}, 16)
	var wg sync.WaitGroup
	var rk *handshake.Keys
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rk, rerr = r.Handshake(e.ctx, secret, id, handshake.Receiver)
	}()
	sk, err := s.Handshake(e.ctx, secret, id, handshake.Sender)
	wg.Wait()
	if err != nil || rerr != nil {
		t.Fatal(err, rerr)
	}
	if strings.Join(sk.Phrase, " ") != strings.Join(rk.Phrase, " ") {
		t.Fatal("phrases differ")
	}
	sdp := "v=0 secret sdp"
	if err := s.SendSignal(e.ctx, proto.Signal{T: proto.SigSDP, Type: "offer", SDP: sdp, Gen: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := r.RecvSignal(e.ctx)
	if err != nil || got.SDP != sdp || got.Gen != 1 {
		t.Fatalf("signal %+v %v", got, err)
	}
}

func TestWrongKeyBurnsTicket(t *testing.T) {
	e := newEnv(t, nil)
	s, r, id := e.pairUp()
	var wg sync.WaitGroup
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, rerr = r.Handshake(e.ctx, bytes.Repeat([]byte{2}, 16), id, handshake.Receiver)
	}()
	_, serr := s.Handshake(e.ctx, bytes.Repeat([]byte{1}, 16), id, handshake.Sender)
	wg.Wait()
	if !errors.Is(serr, sigclient.ErrWrongKey) || !errors.Is(rerr, sigclient.ErrWrongKey) {
		t.Fatalf("sender %v, receiver %v; want wrong key on both", serr, rerr)
	}
	// The ticket stays burned.
	if _, err := e.dial().Join(e.ctx, id); !errors.Is(err, sigclient.ErrUsed) {
		t.Fatalf("join after wrong key: %v", err)
	}
	if len(e.observed(signaling.EventWrongKey)) == 0 {
		t.Fatal("no wrong_key event")
	}
}

func TestJoinErrors(t *testing.T) {
	e := newEnv(t, nil)
	_, _, id := e.pairUp()
	if _, err := e.dial().Join(e.ctx, id); !errors.Is(err, sigclient.ErrUsed) {
		t.Fatalf("second join: %v", err)
	}
	if _, err := e.dial().Join(e.ctx, "AAAAAAAAAAAA"); !errors.Is(err, sigclient.ErrUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := e.dial().Join(e.ctx, "bad id!"); !errors.Is(err, sigclient.ErrUnknown) {
		t.Fatalf("malformed id: %v", err)
	}
	// Expiry, with the server's clock moved past the ticket's lifetime.
	s := e.dial()
	created, err := s.Create(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour + time.Second)
	if _, err := e.dial().Join(e.ctx, created.ID); !errors.Is(err, sigclient.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestSenderLeavingDeletesTicket(t *testing.T) {
	e := newEnv(t, nil)
	s := e.dial()
	created, err := s.Create(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The server notices the close asynchronously; poll the store's view
	// through joins, bounded by the test context.
	for {
		r := e.dial()
		_, err := r.Join(e.ctx, created.ID)
		r.Close()
		if errors.Is(err, sigclient.ErrUnknown) {
			return
		}
		if err != nil && !errors.Is(err, sigclient.ErrPeerGone) && !errors.Is(err, sigclient.ErrUsed) {
			t.Fatalf("join after sender left: %v", err)
		}
		// A join that raced the sender's close (it may even have paired
		// before the server saw the close) consumed the ticket; make a
		// new one.
		s = e.dial()
		if created, err = s.Create(e.ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if e.ctx.Err() != nil {
			t.Fatal("ticket never deleted")
		}
	}
}

func TestPeerGone(t *testing.T) {
	e := newEnv(t, nil)
	s, r, _ := e.pairUp()
	r.Close()
	if _, err := s.NextFrame(e.ctx); !errors.Is(err, sigclient.ErrPeerGone) {
		t.Fatalf("sender after receiver left: %v", err)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, nil)
	s, r, _ := e.pairUp()
	if err := r.Send(e.ctx, proto.ClientMessage{Type: proto.MsgAbort, Reason: proto.AbortCanceled}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextFrame(e.ctx); !errors.Is(err, sigclient.ErrCanceled) {
		t.Fatalf("sender after cancel: %v", err)
	}
}

// TestShutdown: a server that stops tells its clients why, with the close
// code of PROTOCOL.md §2.6, rather than dropping them; the clients then
// resume elsewhere. Both clients are waiting to read when it stops.
func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	s, r, _ := e.pairUp()
	waiting := e.dial()
	if _, err := waiting.Create(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.stop() // returns once every handler has sent its close
	for name, c := range map[string]*sigclient.Conn{"sender": s, "receiver": r, "waiting sender": waiting} {
		if _, err := c.Next(e.ctx); !errors.Is(err, sigclient.ErrShutdown) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if late, err := sigclient.Dial(e.ctx, e.base, sigclient.Options{}); err == nil {
		late.Close()
		t.Error("a connection was accepted after the shutdown")
	}
}

func TestVersionAndLimits(t *testing.T) {
	e := newEnv(t, nil)
	old, err := sigclient.Dial(e.ctx, e.base, sigclient.Options{Subprotocol: "ferry.v0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Next(e.ctx); !errors.Is(err, sigclient.ErrVersion) {
		t.Fatalf("old subprotocol: %v", err)
	}

	s, _, _ := e.pairUp()
	if err := s.SendFrame(e.ctx, make([]byte, proto.MaxSignalMessage+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(e.ctx); !errors.Is(err, sigclient.ErrProtocol) {
		t.Fatalf("oversized message: %v", err)
	}

	// Binary frames before pairing are a protocol error.
	c := e.dial()
	if _, err := c.Create(e.ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.SendFrame(e.ctx, []byte{1})
	if _, err := c.Next(e.ctx); !errors.Is(err, sigclient.ErrProtocol) {
		t.Fatalf("frame before pairing: %v", err)
	}

	// The relay budget per pairing is bounded.
	s, r, _ := e.pairUp()
	go func() {
		for {
			if _, err := r.NextFrame(e.ctx); err != nil {
				return
			}
		}
	}()
	var lerr error
	for i := 0; i < 600 && lerr == nil; i++ {
		lerr = s.SendFrame(e.ctx, make([]byte, 10))
	}
	if _, err := s.Next(e.ctx); !errors.Is(err, sigclient.ErrLimit) {
		t.Fatalf("relay budget: %v (send err %v)", err, lerr)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) {
		c.CreateLimit = ratelimit.New(time.Minute, 2, c.Now)
		c.JoinLimit = ratelimit.New(time.Minute, 2, c.Now)
	})
	for range 2 {
		if _, err := e.dial().Create(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.dial().Create(e.ctx); !errors.Is(err, sigclient.ErrRateLimited) {
		t.Fatalf("third create: %v", err)
	}
	for range 2 {
		_, _ = e.dial().Join(e.ctx, "AAAAAAAAAAAA")
	}
	if _, err := e.dial().Join(e.ctx, "AAAAAAAAAAAA"); !errors.Is(err, sigclient.ErrRateLimited) {
		t.Fatalf("third join: %v", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.dial().Create(e.ctx); err != nil {
		t.Fatalf("create after refill: %v", err)
	}
}

func TestPolicyForbidden(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) {
		c.MayCreate = func(*http.Request, netip.Addr) (string, error) { return "", signaling.ErrForbidden }
	})
	if _, err := e.dial().Create(e.ctx); !errors.Is(err, sigclient.ErrForbidden) {
		t.Fatalf("create against policy: %v", err)
	}
}

// handshakeBoth runs the handshake on both ends of a pairing.
func handshakeBoth(t *testing.T, ctx context.Context, s, r *sigclient.Conn, ikm []byte, ctxID string) (sk, rk *handshake.Keys) {
	t.Helper()
	var wg sync.WaitGroup
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rk, rerr = r.Handshake(ctx, ikm, ctxID, handshake.Receiver)
	}()
	sk, err := s.Handshake(ctx, ikm, ctxID, handshake.Sender)
	wg.Wait()
	if err != nil || rerr != nil {
		t.Fatal(err, rerr)
	}
	return sk, rk
}

func TestResumeSession(t *testing.T) {
	e := newEnv(t, nil)
	s, r, id := e.pairUp()
	secret := bytes.Repeat([]byte{5}, 16)
	sk, _ := handshakeBoth(t, e.ctx, s, r, secret, id)
	if err := s.Send(e.ctx, proto.ClientMessage{Type: proto.MsgSession, Session: sk.SessionID}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Next(e.ctx); err != nil || m.Type != proto.MsgSession {
		t.Fatalf("session ack: %+v %v", m, err)
	}
	// Both WebSockets drop (say, the receiver's process was killed).
	r.Close()
	if _, err := s.NextFrame(e.ctx); !errors.Is(err, sigclient.ErrPeerGone) {
		t.Fatalf("sender: %v", err)
	}
	// Both come back with the session, in either order.
	r2 := e.dial()
	if _, err := r2.Resume(e.ctx, sk.SessionID, "R"); err != nil {
		t.Fatal(err)
	}
	s2 := e.dial()
	if _, err := s2.Resume(e.ctx, sk.SessionID, "S"); err != nil {
		t.Fatal(err)
	}
	if err := r2.WaitPaired(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitPaired(e.ctx); err != nil {
		t.Fatal(err)
	}
	handshakeBoth(t, e.ctx, s2, r2, sk.SessionSecret, sk.SessionID)

	// A newer receiver connection replaces the older one.
	r3 := e.dial()
	if _, err := r3.Resume(e.ctx, sk.SessionID, "R"); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.NextFrame(e.ctx); !errors.Is(err, sigclient.ErrReplaced) {
		t.Fatalf("replaced connection: %v", err)
	}
	if _, err := s2.NextFrame(e.ctx); !errors.Is(err, sigclient.ErrPeerGone) {
		t.Fatalf("stale pairing: %v", err)
	}
	if _, err := e.dial().Resume(e.ctx, "AAAAAAAAAAAAAAAAAAAAAA", "S"); !errors.Is(err, sigclient.ErrUnknown) {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestSessionOnlyFromSender(t *testing.T) {
	e := newEnv(t, nil)
	_, r, _ := e.pairUp()
	if err := r.Send(e.ctx, proto.ClientMessage{Type: proto.MsgSession, Session: "AAAAAAAAAAAAAAAAAAAAAA"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(e.ctx); !errors.Is(err, sigclient.ErrProtocol) {
		t.Fatalf("receiver registering a session: %v", err)
	}
}

func TestReportObserved(t *testing.T) {
	e := newEnv(t, nil)
	s, _, id := e.pairUp()
	e.clock.Advance(time.Second) // reported bytes are bounded by time paired
	rep := proto.ClientMessage{Type: proto.MsgReport, Path: proto.PathRelay, Bytes: 1234, Outcome: proto.OutcomeCompleted, Files: 2}
	if err := s.Send(e.ctx, rep); err != nil {
		t.Fatal(err)
	}
	// ice round trip orders the report before our check.
	iceRoundTrip(t, e.ctx, s)
	reps := e.observed(signaling.EventReport)
	if len(reps) != 1 || reps[0].Bytes != 1234 || reps[0].TicketID != id || reps[0].Path != "relay" {
		t.Fatalf("reports %+v", reps)
	}
}

// iceRoundTrip sends "ice" and returns the answer's ICE servers; as the
// server handles a connection's messages in order, it also orders what
// was sent before it.
func iceRoundTrip(t *testing.T, ctx context.Context, c *sigclient.Conn) []proto.ICEServer {
	t.Helper()
	ice, err := c.ICE(ctx)
	if err != nil {
		t.Fatalf("ice answer: %v", err)
	}
	return ice
}

// TestReportsBounded: a report counts only from a paired connection, once
// per role of a ticket (also across a resume), with the bytes bounded by
// MaxBytes and by 10 Gbit/s times the time since pairing, and names only
// when the operator asked for them, capped.
func TestReportsBounded(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) { c.MaxBytes = 50 << 30 })
	huge := proto.ClientMessage{Type: proto.MsgReport, Path: proto.PathRelay, Bytes: 1 << 60, Outcome: proto.OutcomeCompleted, Files: 1, Names: []string{"secret.txt"}}

	// Before pairing: ignored.
	c := e.dial()
	if _, err := c.Create(e.ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := c.Send(e.ctx, huge); err != nil {
			t.Fatal(err)
		}
	}
	iceRoundTrip(t, e.ctx, c)
	if reps := e.observed(signaling.EventReport); len(reps) != 0 {
		t.Fatalf("unpaired creator's reports observed: %+v", reps)
	}

	s, r, id := e.pairUp()
	e.clock.Advance(2 * time.Second) // at most 2.5 GB could have moved
	for range 100 {
		if err := s.Send(e.ctx, huge); err != nil {
			t.Fatal(err)
		}
	}
	iceRoundTrip(t, e.ctx, s)
	reps := e.observed(signaling.EventReport)
	if len(reps) != 1 {
		t.Fatalf("%d report events from one sender, want 1", len(reps))
	}
	if got := reps[0]; got.Bytes != 2_500_000_000 || got.Names != nil || got.TicketID != id || got.Role != signaling.RoleSender {
		t.Fatalf("report %+v: want 2.5e9 bytes, no names", got)
	}
	// Past the rate bound, MaxBytes bounds the receiver's.
	e.clock.Advance(time.Hour)
	odd := proto.ClientMessage{Type: proto.MsgReport, Path: "carrier pigeon", Bytes: 1 << 60, Outcome: "great", Files: -3}
	if err := r.Send(e.ctx, odd); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(e.ctx, huge); err != nil {
		t.Fatal(err)
	}
	iceRoundTrip(t, e.ctx, r)
	reps = e.observed(signaling.EventReport)
	if len(reps) != 2 {
		t.Fatalf("%d report events, want 2", len(reps))
	}
	if got := reps[1]; got.Bytes != 50<<30 || got.Path != "" || got.Outcome != proto.OutcomeFailed || got.Files != 0 {
		t.Fatalf("receiver's report %+v: want MaxBytes, no path, failed, 0 files", got)
	}

	// A resumed sender of the same ticket has reported already.
	sk, _ := handshakeBoth(t, e.ctx, s, r, bytes.Repeat([]byte{3}, 16), id)
	if err := s.Send(e.ctx, proto.ClientMessage{Type: proto.MsgSession, Session: sk.SessionID}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Next(e.ctx); err != nil || m.Type != proto.MsgSession {
		t.Fatalf("session ack: %+v %v", m, err)
	}
	s2 := e.dial()
	if _, err := s2.Resume(e.ctx, sk.SessionID, "S"); err != nil {
		t.Fatal(err)
	}
	r2 := e.dial()
	if _, err := r2.Resume(e.ctx, sk.SessionID, "R"); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitPaired(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Send(e.ctx, huge); err != nil {
		t.Fatal(err)
	}
	iceRoundTrip(t, e.ctx, s2)
	if n := len(e.observed(signaling.EventReport)); n != 2 {
		t.Fatalf("%d report events after a resumed sender reported again, want 2", n)
	}
}

func TestReportNamesCapped(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) { c.AuditNames = true })
	s, _, _ := e.pairUp()
	e.clock.Advance(time.Second)
	names := make([]string, 600) // 600 × (100+4) bytes > 48 KiB
	for i := range names {
		names[i] = strings.Repeat("n", 100)
	}
	if err := s.Send(e.ctx, proto.ClientMessage{Type: proto.MsgReport, Path: proto.PathDirect, Bytes: 10, Outcome: proto.OutcomeCompleted, Files: 600, Names: names}); err != nil {
		t.Fatal(err)
	}
	iceRoundTrip(t, e.ctx, s)
	reps := e.observed(signaling.EventReport)
	if len(reps) != 1 || len(reps[0].Names) != (48<<10)/104 || reps[0].Bytes != 10 {
		t.Fatalf("reports %d, names %d, want 1 report with %d names", len(reps), len(reps[0].Names), (48<<10)/104)
	}
}

// TestICECredentials: a waiting sender's credentials last its ticket's
// remaining lifetime plus CredentialTTL, others CredentialTTL; "ice" is
// always answered, but with fresh credentials only on a paired connection
// and at most once a minute.
func TestICECredentials(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) { c.CredentialTTL = 20 * time.Minute })
	ttls := func() []time.Duration {
		e.mu.Lock()
		defer e.mu.Unlock()
		return append([]time.Duration(nil), e.ttls...)
	}
	c := e.dial()
	if _, err := c.Create(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	for range 3 {
		if ice := iceRoundTrip(t, e.ctx, c); len(ice) != 0 {
			t.Fatalf("unpaired creator got fresh credentials: %+v", ice)
		}
	}
	if got := ttls(); len(got) != 1 || got[0] != time.Hour+20*time.Minute {
		t.Fatalf("credential ttls %v, want [1h20m]", got)
	}

	s, r, _ := e.pairUp()
	if got := ttls(); len(got) != 3 || got[2] != 20*time.Minute {
		t.Fatalf("credential ttls %v, want the receiver's 20m", got)
	}
	if ice := iceRoundTrip(t, e.ctx, r); len(ice) != 0 {
		t.Fatal("credentials renewed within a minute of the last")
	}
	e.clock.Advance(time.Minute)
	for _, c := range []*sigclient.Conn{s, r} {
		if ice := iceRoundTrip(t, e.ctx, c); len(ice) != 1 {
			t.Fatalf("paired peer got no fresh credentials after a minute: %+v", ice)
		}
		for range 5 {
			if ice := iceRoundTrip(t, e.ctx, c); len(ice) != 0 {
				t.Fatal("credentials renewed in a loop")
			}
		}
	}
	if got := ttls(); len(got) != 5 || got[3] != 20*time.Minute || got[4] != 20*time.Minute {
		t.Fatalf("credential ttls %v", got)
	}
}

// TestExpiredLink: when the ticket expires by the server's clock, its
// waiting sender is closed with 4005, and a late receiver hears
// "expired", not "unknown".
func TestExpiredLink(t *testing.T) {
	e := newEnv(t, nil)
	s := e.dial()
	created, err := s.Create(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := s.Next(e.ctx); !errors.Is(err, sigclient.ErrExpired) {
		t.Fatalf("waiting sender at expiry: %v, want ErrExpired", err)
	}
	if _, err := e.dial().Join(e.ctx, created.ID); !errors.Is(err, sigclient.ErrExpired) {
		t.Fatalf("join after expiry: %v, want ErrExpired", err)
	}
	if n := len(e.observed(signaling.EventExpired)); n != 1 {
		t.Fatalf("%d expired events", n)
	}
}

// TestIdleTimeout: a paired connection whose client sends nothing for
// IdleTimeout is closed with 4010; any message restarts the count.
func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) { c.IdleTimeout = time.Hour })
	s, r, _ := e.pairUp()
	e.clock.Advance(50 * time.Minute)
	iceRoundTrip(t, e.ctx, s) // s is active, r is not
	e.clock.Advance(10 * time.Minute)
	if _, err := r.Next(e.ctx); !errors.Is(err, sigclient.ErrTimeout) {
		t.Fatalf("idle receiver: %v, want ErrTimeout", err)
	}
	if _, err := s.Next(e.ctx); !errors.Is(err, sigclient.ErrPeerGone) {
		t.Fatalf("active sender: %v, want ErrPeerGone", err)
	}
}

// TestConnsPerIP: an address holds at most MaxConnsPerIP signaling
// connections; the next is closed with 4003, and a slot frees when one
// closes.
func TestConnsPerIP(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) { c.MaxConnsPerIP = 3 })
	var held []*sigclient.Conn
	for range 3 {
		c := e.dial()
		if _, err := c.Create(e.ctx); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if _, err := e.dial().Create(e.ctx); !errors.Is(err, sigclient.ErrRateLimited) {
		t.Fatalf("fourth connection: %v, want ErrRateLimited", err)
	}
	if len(e.observed(signaling.EventConnRefused)) != 1 {
		t.Fatal("no rejected event")
	}
	held[0].Close()
	// The server notices the close asynchronously.
	for {
		c := e.dial()
		_, err := c.Create(e.ctx)
		c.Close()
		if err == nil {
			return
		}
		if !errors.Is(err, sigclient.ErrRateLimited) || e.ctx.Err() != nil {
			t.Fatalf("after one closed: %v", err)
		}
	}
}

// TestConnsPerUnknownAddress: clients whose address is unknown (a garbled
// X-Forwarded-For hop behind a trusted proxy) share one cap; they are not
// exempt from it.
func TestConnsPerUnknownAddress(t *testing.T) {
	e := newEnv(t, func(c *signaling.Config) {
		c.MaxConnsPerIP = 2
		c.ClientIP = func(*http.Request) netip.Addr { return netip.Addr{} }
	})
	for range 2 {
		c := e.dial()
		if _, err := c.Create(e.ctx); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if _, err := e.dial().Create(e.ctx); !errors.Is(err, sigclient.ErrRateLimited) {
		t.Fatalf("third connection from unknown addresses: %v, want ErrRateLimited", err)
	}
}
