package handshake_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"testing"

	"github.com/ferrydev/ferry/internal/handshake"
	"github.com/ferrydev/ferry/internal/vectors"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors")

func pair(t *testing.T, sSecret, rSecret []byte) (s, r *handshake.Keys) {
	t.Helper()
	hs, hr := handshake.NewHello(handshake.Sender), handshake.NewHello(handshake.Receiver)
	// Frames go through the wire format, as they would through the server.
	ps, err := handshake.ParseHello(hs.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	pr, err := handshake.ParseHello(hr.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	s, err = handshake.Derive(sSecret, "AAECAwQFBgcI", hs, pr)
	if err != nil {
		t.Fatal(err)
	}
	r, err = handshake.Derive(rSecret, "AAECAwQFBgcI", hr, ps)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func TestHandshakeRoundTrip(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 16)
	s, r := pair(t, secret, secret)
	if err := s.CheckConfirm(r.Confirm()); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckConfirm(s.Confirm()); err != nil {
		t.Fatal(err)
	}
	// A peer cannot reflect our own confirmation back at us.
	if err := s.CheckConfirm(s.Confirm()); !errors.Is(err, handshake.ErrWrongKey) {
		t.Fatalf("reflected confirm accepted: %v", err)
	}
	if s.SessionID != r.SessionID || !bytes.Equal(s.SessionSecret, r.SessionSecret) {
		t.Fatal("session id/secret differ")
	}
	if len(s.Phrase) != handshake.PhraseWords || s.Phrase[0] != r.Phrase[0] || s.Phrase[3] != r.Phrase[3] {
		t.Fatalf("phrases differ: %v %v", s.Phrase, r.Phrase)
	}
	for i := range 3 {
		msg := []byte{byte(i), 'h', 'i'}
		f, err := s.Seal(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Open(f)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("open s2r %d: %v", i, err)
		}
		f, _ = r.Seal(msg)
		if got, err := s.Open(f); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("open r2s %d: %v", i, err)
		}
	}
}

func TestWrongSecret(t *testing.T) {
	s, r := pair(t, bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{8}, 16))
	if err := s.CheckConfirm(r.Confirm()); !errors.Is(err, handshake.ErrWrongKey) {
		t.Fatalf("sender accepted wrong key: %v", err)
	}
	if err := r.CheckConfirm(s.Confirm()); !errors.Is(err, handshake.ErrWrongKey) {
		t.Fatalf("receiver accepted wrong key: %v", err)
	}
	f, _ := s.Seal([]byte("x"))
	if _, err := r.Open(f); !errors.Is(err, handshake.ErrDecrypt) {
		t.Fatalf("open with wrong key: %v", err)
	}
}

func TestSealedTamperReplay(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 16)
	s, r := pair(t, secret, secret)
	f0, _ := s.Seal([]byte("zero"))
	f1, _ := s.Seal([]byte("one"))
	if _, err := r.Open(f1); !errors.Is(err, handshake.ErrOutOfOrder) {
		t.Fatalf("skipped frame accepted: %v", err)
	}
	bad := bytes.Clone(f0)
	bad[len(bad)-1] ^= 1
	if _, err := r.Open(bad); !errors.Is(err, handshake.ErrDecrypt) {
		t.Fatalf("tampered frame accepted: %v", err)
	}
	if _, err := r.Open(f0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(f0); !errors.Is(err, handshake.ErrOutOfOrder) {
		t.Fatalf("replayed frame accepted: %v", err)
	}
	if _, err := s.Seal(make([]byte, handshake.MaxPlaintext+1)); !errors.Is(err, handshake.ErrTooLarge) {
		t.Fatalf("oversized seal: %v", err)
	}
}

func TestSameRoleRefused(t *testing.T) {
	a, b := handshake.NewHello(handshake.Sender), handshake.NewHello(handshake.Sender)
	if _, err := handshake.Derive([]byte("k"), "id", a, b); !errors.Is(err, handshake.ErrRole) {
		t.Fatalf("Derive with equal roles: %v", err)
	}
}

func TestParseHelloErrors(t *testing.T) {
	good := handshake.NewHello(handshake.Receiver).Marshal()
	for name, b := range map[string][]byte{
		"short":   good[:10],
		"type":    append([]byte{2}, good[1:]...),
		"version": append([]byte{1, 9}, good[2:]...),
		"role":    append([]byte{1, 1, 'X'}, good[3:]...),
	} {
		if _, err := handshake.ParseHello(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

type sealedVector struct {
	Dir       string `json:"dir"`
	Plaintext string `json:"plaintext"`
	Frame     string `json:"frameHex"`
}

type handshakeVector struct {
	SecretHex  string         `json:"secretHex"`
	ContextID  string         `json:"contextId"`
	HelloS     string         `json:"helloSenderHex"`
	HelloR     string         `json:"helloReceiverHex"`
	ConfirmS   string         `json:"confirmSenderHex"`
	ConfirmR   string         `json:"confirmReceiverHex"`
	Phrase     []string       `json:"phrase"`
	SessionID  string         `json:"sessionId"`
	SessionHex string         `json:"sessionSecretHex"`
	Sealed     []sealedVector `json:"sealed"`
	WordCount  int            `json:"wordCount"`
}

// TestVectors pins the handshake bytes for the TypeScript client.
func TestVectors(t *testing.T) {
	secret, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	hs := handshake.Hello{Version: 1, Role: handshake.Sender}
	hr := handshake.Hello{Version: 1, Role: handshake.Receiver}
	for i := range hs.Nonce {
		hs.Nonce[i] = byte(0xa0 + i)
		hr.Nonce[i] = byte(0xb0 + i)
	}
	const id = "AAECAwQFBgcI"
	s, err := handshake.Derive(secret, id, hs, hr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := handshake.Derive(secret, id, hr, hs)
	if err != nil {
		t.Fatal(err)
	}
	v := handshakeVector{
		SecretHex: hex.EncodeToString(secret), ContextID: id,
		HelloS: hex.EncodeToString(hs.Marshal()), HelloR: hex.EncodeToString(hr.Marshal()),
		ConfirmS: hex.EncodeToString(s.Confirm()), ConfirmR: hex.EncodeToString(r.Confirm()),
		Phrase: s.Phrase, SessionID: s.SessionID, SessionHex: hex.EncodeToString(s.SessionSecret),
		WordCount: 256,
	}
	for _, m := range []struct{ dir, pt string }{
		{"s2r", `{"t":"info","agent":"ferry-go/1"}`}, {"s2r", `{"t":"sdp","type":"offer","sdp":"v=0"}`},
		{"r2s", `{"t":"info","agent":"ferry-web/1"}`},
	} {
		from, to := s, r
		if m.dir == "r2s" {
			from, to = r, s
		}
		f, err := from.Seal([]byte(m.pt))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := to.Open(f); err != nil || string(got) != m.pt {
			t.Fatalf("vector does not open: %v", err)
		}
		v.Sealed = append(v.Sealed, sealedVector{Dir: m.dir, Plaintext: m.pt, Frame: hex.EncodeToString(f)})
	}
	vectors.Check(t, "handshake.json", v, *update)
}

func FuzzParseHello(f *testing.F) {
	f.Add(handshake.NewHello(handshake.Sender).Marshal())
	f.Add([]byte{1, 1, 'R'})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := handshake.ParseHello(b)
		if err == nil && !bytes.Equal(h.Marshal(), b) {
			t.Fatal("hello does not round-trip")
		}
	})
}

func FuzzOpen(f *testing.F) {
	secret := bytes.Repeat([]byte{3}, 16)
	hs := handshake.Hello{Version: 1, Role: handshake.Sender}
	hr := handshake.Hello{Version: 1, Role: handshake.Receiver}
	s, _ := handshake.Derive(secret, "id", hs, hr)
	good, _ := s.Seal([]byte("hello"))
	f.Add(good)
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _ := handshake.Derive(secret, "id", hr, hs)
		pt, err := r.Open(b)
		if err == nil && !bytes.Equal(b, good) {
			t.Fatalf("forged frame opened: %q", pt)
		}
		_ = r.CheckConfirm(b)
	})
}
