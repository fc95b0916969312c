package peer

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/transfer"
	"github.com/quic-go/quic-go"
)

// QUIC errors.
var (
	errQUICFingerprint = errors.New("peer: QUIC certificate does not match the fingerprint the peer sent")
	errQUICDeclined    = errors.New("peer: the other side did not set up QUIC")
	errQUICTooLarge    = errors.New("peer: QUIC message larger than allowed")
)

const (
	// quicALPN names the protocol on the QUIC connection (PROTOCOL §4.7).
	quicALPN = "ferry/1"
	// quicEarlyPackets bounds the packets kept before the transport opens
	// (the peer's first flight).
	quicEarlyPackets = 64
	// quicSetupTimeout bounds the QUIC handshake and the first stream;
	// past it the transfer runs over the data channel.
	quicSetupTimeout = 5 * time.Second
	// quicIdleTimeout ends a QUIC connection whose peer went silent; the
	// generation notices a dead ICE path on its own earlier (4 s).
	quicIdleTimeout = 30 * time.Second
	// Flow-control windows: quic-go starts at the initial windows and
	// grows them with the measured RTT up to the maxima, which cover
	// 100 ms × 1 Gbit/s (12.5 MB) with room to spare.
	quicStreamWindow    = 4 << 20
	quicMaxStreamWindow = 24 << 20
	quicConnWindow      = 6 << 20
	quicMaxConnWindow   = 32 << 20
	// quicMaxPacket is the largest packet quic-go sends (its path MTU
	// discovery stops there). Where the data channel already sends larger
	// SCTP packets (one machine, or one link with a large MTU: mtu.go),
	// it moves a gigabyte in far fewer packets, and the transfer stays on
	// it.
	quicMaxPacket = 1452
)

// quicHello is the CONTROL message the two peers exchange over the data
// channel before the transfer when both announced FeatureQUIC: first the
// certificate fingerprints, then whether the QUIC connection is ready.
type quicHello struct {
	T  string `json:"t"`            // "quic" or "quic-ready"
	FP string `json:"fp,omitempty"` // SHA-256 of the certificate (DER), hex
	OK bool   `json:"ok,omitempty"` // quic-ready: this side can use it
}

const (
	helloQUIC  = "quic"
	helloReady = "quic-ready"
	msgControl = 0x01 // PROTOCOL §4: CONTROL
)

func encodeHello(h quicHello) []byte {
	b, _ := json.Marshal(h)
	return append([]byte{msgControl}, b...)
}

// decodeHello reads msg as a quicHello of type t; ok is false for any
// other message.
func decodeHello(msg []byte, t string) (quicHello, bool) {
	var h quicHello
	if len(msg) < 2 || msg[0] != msgControl || json.Unmarshal(msg[1:], &h) != nil || h.T != t {
		return quicHello{}, false
	}
	return h, true
}

// quicLink is a QUIC connection over a generation's ICE connection and
// its one stream.
type quicLink struct {
	pc   *quicPacketConn
	tr   *quic.Transport
	ln   *quic.Listener
	conn *quic.Conn
	st   *quic.Stream
}

// close ends the connection (telling the peer), the transport and the
// endpoint, and waits for quic-go's goroutines.
func (q *quicLink) close() {
	if q.conn != nil {
		_ = q.conn.CloseWithError(0, "")
	}
	if q.ln != nil {
		_ = q.ln.Close()
	}
	_ = q.pc.Close() // ends the transport's read loop
	_ = q.tr.Close()
}

// ephemeralCert is a self-signed certificate for one QUIC connection and
// its SHA-256 fingerprint. Only the fingerprint is checked: it travels
// over the data channel, which DTLS authenticates with fingerprints from
// the sealed signaling.
func ephemeralCert() (tls.Certificate, [32]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, [32]byte{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, [32]byte{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, [32]byte{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, sha256.Sum256(der), nil
}

// pinTLS is a TLS configuration that presents cert and accepts exactly
// the peer certificate whose SHA-256 is peerFP.
func pinTLS(cert tls.Certificate, peerFP []byte, server bool) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{quicALPN},
		MinVersion:   tls.VersionTLS13,
		// The chain is not checked (self-signed); the pin below is.
		InsecureSkipVerify: true, //nolint:gosec // pinned by fingerprint
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errQUICFingerprint
			}
			fp := sha256.Sum256(raw[0])
			if subtle.ConstantTimeCompare(fp[:], peerFP) != 1 {
				return errQUICFingerprint
			}
			return nil
		},
	}
	if server {
		c.ClientAuth = tls.RequireAnyClientCert
	}
	return c
}

// quicConfig is the QUIC configuration of a connection with o; its loss
// tolerance is the one SCTP gets (our quic-go's Config.LossTolerance).
func quicConfig(o Options) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           quicSetupTimeout,
		MaxIdleTimeout:                 quicIdleTimeout,
		KeepAlivePeriod:                5 * time.Second,
		InitialStreamReceiveWindow:     quicStreamWindow,
		MaxStreamReceiveWindow:         quicMaxStreamWindow,
		InitialConnectionReceiveWindow: quicConnWindow,
		MaxConnectionReceiveWindow:     quicMaxConnWindow,
		MaxIncomingStreams:             1,
		MaxIncomingUniStreams:          -1,
		LossTolerance:                  o.LossTolerance,
	}
}

// quicPacketConn is the generation's QUIC mux endpoint as the
// net.PacketConn quic.Transport takes. All packets come from and go to
// the ICE connection's selected pair, so the peer's address is one fixed
// value: quic-go never sees a path change when ICE switches pairs.
type quicPacketConn struct {
	ep     net.Conn
	remote net.Addr
	// df stands in for the ICE socket when quic-go asks for a syscall
	// connection: quic-go probes the path MTU (DPLPMTUD) only on sockets
	// it may set Don't Fragment on, and its largest probe (1452 bytes) fits
	// any path with a 1500-byte MTU. Nil if no socket could be opened.
	df *net.UDPConn

	// The peer's packets come through deliver, on the ICE goroutine that
	// read them, to tr once open; until then at most quicEarlyPackets wait
	// in early.
	mu    sync.Mutex
	tr    *quic.Transport
	early [][]byte
}

func newQUICPacketConn() *quicPacketConn {
	c := &quicPacketConn{}
	if df, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
		c.df = df
	}
	return c
}

// attach gives c its endpoint, before open.
func (c *quicPacketConn) attach(ep net.Conn) {
	remote := ep.RemoteAddr()
	if remote == nil {
		remote = &net.UDPAddr{IP: net.IPv4zero}
	}
	c.mu.Lock()
	c.ep, c.remote = ep, remote
	c.mu.Unlock()
}

// deliver takes a QUIC packet on the ICE goroutine that read it (the
// endpoint's handler) and hands it to the transport, or keeps it until
// open (a peer's first packet may come before our Listen).
func (c *quicPacketConn) deliver(b []byte) {
	c.mu.Lock()
	tr, remote := c.tr, c.remote
	if tr == nil {
		if len(c.early) < quicEarlyPackets {
			c.early = append(c.early, bytes.Clone(b))
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	tr.Deliver(b, remote)
}

// open sends the packets to tr from now on, the kept ones first.
func (c *quicPacketConn) open(tr *quic.Transport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.early {
		tr.Deliver(b, c.remote)
	}
	c.early, c.tr = nil, tr
}

// ReadFrom gets nothing (the packets come through deliver) until the
// endpoint closes, which ends the transport's read loop.
func (c *quicPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.ep.Read(p)
	return n, c.remote, err
}

func (c *quicPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) { return c.ep.Write(p) }

// quic-go sends batches only to a BatchPacketConn: batching would quietly
// stop if the signatures drifted apart.
var _ quic.BatchPacketConn = (*quicPacketConn)(nil)

// batchWriter is our pion/webrtc's QUIC endpoint: it hands a batch of
// packets to the ICE connection whole.
type batchWriter interface {
	WriteBatch(b []byte, segSize int) (int, error)
}

// WriteBatch makes quic-go pack its packets into GSO batches (our
// quic-go's BatchPacketConn), which go to the selected pair's socket in
// one call and, on a host or reflexive pair, out in one sendmsg: written
// one by one, each packet crossed the ICE connection and the socket's
// queue on its own and was copied twice on the way, a fifth of a
// sender's CPU.
func (c *quicPacketConn) WriteBatch(b []byte, segSize int, _ net.Addr) error {
	if segSize <= 0 || segSize > len(b) {
		segSize = len(b)
	}
	if bw, ok := c.ep.(batchWriter); ok {
		_, err := bw.WriteBatch(b, segSize)
		return err
	}
	for off := 0; off < len(b); off += segSize {
		if _, err := c.ep.Write(b[off:min(off+segSize, len(b))]); err != nil {
			return err
		}
	}
	return nil
}

func (c *quicPacketConn) Close() error {
	if c.df != nil {
		_ = c.df.Close()
	}
	if c.ep == nil {
		return nil
	}
	return c.ep.Close()
}

func (c *quicPacketConn) LocalAddr() net.Addr { return c.ep.LocalAddr() }

// Deadlines: only the endpoint's read deadline is ours; the others would
// apply to the ICE connection the data channel shares.
func (c *quicPacketConn) SetDeadline(t time.Time) error      { return c.ep.SetReadDeadline(t) }
func (c *quicPacketConn) SetReadDeadline(t time.Time) error  { return c.ep.SetReadDeadline(t) }
func (c *quicPacketConn) SetWriteDeadline(t time.Time) error { return nil }

// SetReadBuffer and SetWriteBuffer size the stand-in socket, so that
// quic-go's check of the buffer sizes says what it would say of the ICE
// sockets (internal/udpbatch sizes those the same way).
func (c *quicPacketConn) SetReadBuffer(n int) error {
	if c.df == nil {
		return nil
	}
	return c.df.SetReadBuffer(n)
}

func (c *quicPacketConn) SetWriteBuffer(n int) error {
	if c.df == nil {
		return nil
	}
	return c.df.SetWriteBuffer(n)
}

// errNoSyscallConn: no stand-in socket, so no path MTU probing.
var errNoSyscallConn = errors.New("peer: no socket for QUIC options")

func (c *quicPacketConn) SyscallConn() (syscall.RawConn, error) {
	if c.df == nil {
		return nil, errNoSyscallConn
	}
	return c.df.SyscallConn()
}

// quicConn is transfer.Conn over one bidirectional QUIC stream: each
// message is a u32 big-endian length and the message (PROTOCOL §4.7).
type quicConn struct {
	g     *pionGeneration
	q     *quicLink
	max   int
	limit int // the largest message Recv takes
	hdr   [4]byte
	rh    [4]byte
	// buf grows to the largest message read so far (a chunk frame):
	// half of a 2 MiB limit with the usual 1 MiB chunks.
	buf []byte
}

// RTT is the path's lowest round-trip time so far (the receiver sizes its
// credit window for it): at the transfer's start the handshake's, before
// any queue builds.
func (c *quicConn) RTT() time.Duration {
	if c.q.conn == nil {
		return 0
	}
	st := c.q.conn.ConnectionStats()
	rtt := cmp.Or(st.MinRTT, st.SmoothedRTT)
	c.g.log.Debug("round trip for the credit window", "gen", c.g.gen, "rtt", rtt)
	return rtt
}

func (c *quicConn) Send(b []byte) error {
	if len(b) > c.max {
		return fmt.Errorf("%w: %d bytes", errQUICTooLarge, len(b))
	}
	binary.BigEndian.PutUint32(c.hdr[:], uint32(len(b))) //nolint:gosec // bounded by max
	if _, err := c.q.st.Write(c.hdr[:]); err != nil {
		return c.lost(err)
	}
	if _, err := c.q.st.Write(b); err != nil {
		return c.lost(err)
	}
	return nil
}

func (c *quicConn) Recv() ([]byte, error) {
	if _, err := io.ReadFull(c.q.st, c.rh[:]); err != nil {
		return nil, c.lost(err)
	}
	n := binary.BigEndian.Uint32(c.rh[:])
	if int64(n) > int64(c.limit) {
		err := fmt.Errorf("%w: %d bytes", errQUICTooLarge, n)
		c.g.fail(err)
		return nil, err
	}
	if int(n) > len(c.buf) {
		c.buf = make([]byte, n)
	}
	if _, err := io.ReadFull(c.q.st, c.buf[:n]); err != nil {
		return nil, c.lost(err)
	}
	return c.buf[:n], nil
}

// lost ends the generation after the stream failed and says why it
// ended: when the generation died first (ICE lost the path), the stream
// only reports the QUIC connection we closed then.
func (c *quicConn) lost(err error) error {
	c.g.fail(err)
	<-c.g.dead
	return c.g.deadErr
}

func (c *quicConn) MaxMessage() int { return c.max }

func (c *quicConn) Close() error {
	c.g.fail(errConnClosed)
	return nil
}

var _ transfer.RTTConn = (*quicConn)(nil)

// setupQUIC moves the generation's transfer onto QUIC when both peers
// can (PROTOCOL §4.7): the sender (offer: it offered, peerQUIC: the
// receiver announced FeatureQUIC) starts the exchange over the data
// channel; the receiver looks at the sender's first message and, if it is
// not the QUIC hello, leaves it for the transfer. Whatever goes wrong
// short of the data channel failing leaves the transfer on the data
// channel. It returns when the generation's Conn is decided.
func (l *pionGeneration) setupQUIC(ctx context.Context, offer, peerQUIC bool) {
	if l.opts.NoQUIC || (offer && !peerQUIC) {
		return
	}
	if sctp := l.pc.SCTP(); offer && sctp != nil && sctp.Stats().MTU > quicMaxPacket {
		l.log.Debug("QUIC not used: the data channel sends larger packets on this link", "gen", l.gen, "sctp", sctp.Stats().MTU)
		return
	}
	// The exchange reads the data channel; a run that is called off ends
	// the generation, which unblocks it.
	stop := context.AfterFunc(ctx, func() { l.fail(context.Cause(ctx)) })
	defer stop()
	dc := l.dataConn()
	cert, fp, err := ephemeralCert()
	if err != nil {
		l.log.Info("QUIC not used", "gen", l.gen, "err", err)
		if offer {
			return
		}
	}
	var peerFP []byte
	if offer {
		if err := dc.Send(encodeHello(quicHello{T: helloQUIC, FP: hex.EncodeToString(fp[:])})); err != nil {
			return
		}
		msg, err := dc.Recv()
		if err != nil {
			return
		}
		h, ok := decodeHello(msg, helloQUIC)
		if !ok {
			l.log.Info("QUIC not used: the receiver's answer is not a QUIC hello", "gen", l.gen)
			l.fail(fmt.Errorf("%w: unexpected message before the transfer", transfer.ErrProtocol))
			return
		}
		if peerFP, err = hex.DecodeString(h.FP); err != nil || len(peerFP) != sha256.Size {
			l.log.Info("QUIC not used", "gen", l.gen, "err", errQUICDeclined)
			return
		}
	} else {
		msg, err := dc.Recv()
		if err != nil {
			return
		}
		h, ok := decodeHello(msg, helloQUIC)
		if !ok {
			dc.unread(msg) // the sender's first transfer message
			return
		}
		reply := quicHello{T: helloQUIC}
		peerFP, err = hex.DecodeString(h.FP)
		if err == nil && len(peerFP) == sha256.Size && cert.Certificate != nil {
			reply.FP = hex.EncodeToString(fp[:])
		}
		if err := dc.Send(encodeHello(reply)); err != nil {
			return
		}
		if reply.FP == "" {
			l.log.Info("QUIC not used: no certificate or a bad fingerprint", "gen", l.gen)
			return
		}
	}

	q, err := l.connectQUIC(ctx, offer, cert, peerFP)
	mine := quicHello{T: helloReady, OK: err == nil}
	if err := dc.Send(encodeHello(mine)); err != nil {
		if q != nil {
			q.close()
		}
		return
	}
	msg, rerr := dc.Recv()
	theirs, ok := decodeHello(msg, helloReady)
	switch {
	case rerr != nil:
		// the generation is dead
	case !ok:
		l.fail(fmt.Errorf("%w: unexpected message before the transfer", transfer.ErrProtocol))
	case err != nil:
		l.log.Info("QUIC not used; the transfer runs over the data channel", "gen", l.gen, "err", err)
	case !theirs.OK:
		l.log.Info("QUIC not used; the transfer runs over the data channel", "gen", l.gen, "err", errQUICDeclined)
	default:
		l.mu.Lock()
		if !l.failed {
			l.quic = q
			q = nil
		}
		l.mu.Unlock()
		if q == nil {
			l.log.Info("transfer over QUIC", "gen", l.gen)
			dc.releaseBuffer()
		}
	}
	if q != nil {
		q.close()
	}
}

// connectQUIC sets up the QUIC connection and its stream: the sender
// dials, the receiver accepts; both within quicSetupTimeout.
func (l *pionGeneration) connectQUIC(ctx context.Context, client bool, cert tls.Certificate, peerFP []byte) (*quicLink, error) {
	pc := newQUICPacketConn()
	ep, err := l.pc.SCTP().Transport().ICETransport().NewQUICEndpoint(pc.deliver)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	pc.attach(ep)
	q := &quicLink{pc: pc, tr: &quic.Transport{Conn: pc}}
	ctx, cancel := context.WithTimeout(ctx, quicSetupTimeout)
	defer cancel()
	if err := q.start(ctx, client, cert, peerFP, quicConfig(l.opts)); err != nil {
		q.close()
		return nil, err
	}
	return q, nil
}

func (q *quicLink) start(ctx context.Context, client bool, cert tls.Certificate, peerFP []byte, cfg *quic.Config) error {
	var err error
	if client {
		q.pc.open(q.tr)
		q.conn, err = q.tr.Dial(ctx, q.pc.remote, pinTLS(cert, peerFP, false), cfg)
		if err != nil {
			return err
		}
		if q.st, err = q.conn.OpenStreamSync(ctx); err != nil {
			return err
		}
		// The stream reaches the server with its first bytes: an empty
		// message.
		_, err = q.st.Write([]byte{0, 0, 0, 0})
		return err
	}
	if q.ln, err = q.tr.Listen(pinTLS(cert, peerFP, true), cfg); err != nil {
		return err
	}
	q.pc.open(q.tr)
	if q.conn, err = q.ln.Accept(ctx); err != nil {
		return err
	}
	if q.st, err = q.conn.AcceptStream(ctx); err != nil {
		return err
	}
	var empty [4]byte
	stop := context.AfterFunc(ctx, func() { _ = q.st.SetReadDeadline(time.Now()) })
	_, err = io.ReadFull(q.st, empty[:])
	if !stop() {
		return context.Cause(ctx) // the deadline may be set: the stream is of no use
	}
	if err != nil {
		return err
	}
	if empty != [4]byte{} {
		return fmt.Errorf("%w: the QUIC stream did not start with an empty message", transfer.ErrProtocol)
	}
	return nil
}

// packetSize is the average size of the QUIC packets sent so far.
func (q *quicLink) packetSize() uint32 {
	st := q.conn.ConnectionStats()
	if st.PacketsSent == 0 {
		return 0
	}
	return uint32(st.BytesSent / st.PacketsSent) //nolint:gosec // at most a datagram
}
