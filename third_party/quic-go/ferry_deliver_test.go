// SPDX-FileCopyrightText: 2026 The ferry authors
// SPDX-License-Identifier: MIT

package quic

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// ferryTLS is a self-signed server certificate and a client that trusts
// anything, for ALPN "ferry-test".
func ferryTLS(t *testing.T) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"ferry-test"}},
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"ferry-test"}} //nolint:gosec // a test
}

// deliverConn is a packet connection whose reads wait for Close: its
// packets reach the transport through Deliver.
type deliverConn struct {
	net.PacketConn
	closed chan struct{}
}

func (c *deliverConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.closed
	return 0, nil, net.ErrClosed
}

func (c *deliverConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return c.PacketConn.Close()
}

// Two transports whose packets travel only through Deliver (ferry patch)
// complete a handshake and move a stream's bytes.
func TestFerryDeliver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Real sockets for writing; a reader goroutine per socket hands what
	// it reads to the other side's Deliver, as ferry's ICE goroutine does.
	newConn := func() *deliverConn {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return &deliverConn{PacketConn: pc, closed: make(chan struct{})}
	}
	sc, cc := newConn(), newConn()
	st, ct := &Transport{Conn: sc}, &Transport{Conn: cc}
	// The connections first: a transport's Close waits for its read loop,
	// which returns when its connection closes (as ferry's does).
	defer func() {
		sc.Close()
		cc.Close()
		st.Close()
		ct.Close()
	}()
	pump := func(c *deliverConn, tr *Transport) {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.PacketConn.ReadFrom(buf)
			if err != nil {
				return
			}
			tr.Deliver(buf[:n], from)
		}
	}
	go pump(sc, st)
	go pump(cc, ct)
	stls, ctls := ferryTLS(t)
	ln, err := st.Listen(stls, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i)
	}
	errc := make(chan error, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			errc <- err
			return
		}
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			errc <- err
			return
		}
		got := make([]byte, 0, len(payload))
		buf := make([]byte, 65536)
		for len(got) < len(payload) {
			n, err := s.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if string(got) != string(payload) {
			errc <- errors.New("the stream's bytes differ")
			return
		}
		errc <- nil
	}()
	conn, err := ct.Dial(ctx, sc.LocalAddr(), ctls, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server: %v", err)
	}
}
