package peer

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// The QUIC handshake succeeds only between the two certificates whose
// fingerprints the peers exchanged: a third certificate (someone who saw
// the packets but not the data channel) is refused on either side.
func TestQUICPinnedHandshake(t *testing.T) {
	client, cfp, err := ephemeralCert()
	if err != nil {
		t.Fatal(err)
	}
	server, sfp, err := ephemeralCert()
	if err != nil {
		t.Fatal(err)
	}
	_, ofp, err := ephemeralCert()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		clientPin    []byte // the server certificate the client accepts
		serverPin    []byte // the client certificate the server accepts
		wantSuccess  bool
		wantPinError bool
	}{
		{"pinned", sfp[:], cfp[:], true, false},
		{"client pins another", ofp[:], cfp[:], false, true},
		{"server pins another", sfp[:], ofp[:], false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sconn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			cconn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			st, ct := &quic.Transport{Conn: sconn}, &quic.Transport{Conn: cconn}
			defer func() {
				_ = st.Close()
				_ = ct.Close()
				_ = sconn.Close()
				_ = cconn.Close()
			}()
			ln, err := st.Listen(pinTLS(server, c.serverPin, true), quicConfig(Options{}))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			// The server gives up once the client is done.
			actx, stopAccept := context.WithCancel(ctx)
			defer stopAccept()
			accepted := make(chan error, 1)
			go func() {
				conn, err := ln.Accept(actx)
				if err == nil {
					_, err = conn.AcceptStream(actx)
					_ = conn.CloseWithError(0, "")
				}
				accepted <- err
			}()
			conn, err := ct.Dial(ctx, sconn.LocalAddr(), pinTLS(client, c.clientPin, false), quicConfig(Options{}))
			if err == nil {
				if conn.ConnectionState().TLS.NegotiatedProtocol != quicALPN {
					t.Errorf("ALPN %q", conn.ConnectionState().TLS.NegotiatedProtocol)
				}
				var st *quic.Stream
				if st, err = conn.OpenStreamSync(ctx); err == nil {
					_, err = st.Write([]byte{0, 0, 0, 0})
				}
			}
			if err == nil && !c.wantSuccess {
				// TLS 1.3: the client is done before the server checks its
				// certificate; the server then closes the connection.
				select {
				case <-conn.Context().Done():
					err = context.Cause(conn.Context())
				case <-ctx.Done():
				}
			}
			if !c.wantSuccess {
				stopAccept()
			}
			serr := <-accepted
			if conn != nil {
				_ = conn.CloseWithError(0, "")
			}
			if c.wantSuccess {
				if err != nil || serr != nil {
					t.Fatalf("client %v, server %v", err, serr)
				}
				return
			}
			if err == nil && serr == nil {
				t.Fatal("handshake with an unpinned certificate succeeded")
			}
			if c.wantPinError && !errors.Is(err, errQUICFingerprint) && !errors.Is(serr, errQUICFingerprint) &&
				(err == nil || !isTLSAlert(err)) {
				t.Fatalf("client %v, server %v; want a fingerprint error", err, serr)
			}
		})
	}
}

// isTLSAlert: the side whose certificate was refused sees the peer's
// TLS alert (a QUIC transport error), not our error value.
func isTLSAlert(err error) bool {
	var te *quic.TransportError
	return errors.As(err, &te)
}

func TestQUICHello(t *testing.T) {
	msg := encodeHello(quicHello{T: helloQUIC, FP: "ab"})
	if h, ok := decodeHello(msg, helloQUIC); !ok || h.FP != "ab" {
		t.Fatalf("decoded %+v, %v", h, ok)
	}
	if _, ok := decodeHello(msg, helloReady); ok {
		t.Fatal("a quic hello decoded as quic-ready")
	}
	// A manifest (CONTROL with another "t") or a chunk is not a hello.
	for _, m := range [][]byte{append([]byte{msgControl}, `{"t":"manifest"}`...), {0x10, 0, 0}, nil} {
		if _, ok := decodeHello(m, helloQUIC); ok {
			t.Fatalf("%q decoded as a hello", m)
		}
	}
}

// The QUIC connection gets the loss tolerance of Options, as the SCTP
// association does (newAPI): ferry's default 2 %, or 0 for upstream's
// response to every loss (--loss-tolerance 0).
func TestQUICConfigLossTolerance(t *testing.T) {
	for _, lt := range []float64{0, 0.02, 0.1} {
		if got := quicConfig(Options{LossTolerance: lt}).LossTolerance; got != lt {
			t.Errorf("Options.LossTolerance %v: QUIC gets %v", lt, got)
		}
	}
}
