package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CoturnPort is where the lab's coturn listens on ServerIP (ferry's bundled
// relay has TURNPort).
const CoturnPort = 3479

// Coturn runs Debian's coturn `turnserver` in the public namespace on
// ServerIP:CoturnPort with the TURN REST shared secret, on its own
// configuration and database in a temporary folder (the system's service
// and files are never touched), and waits until it answers STUN on UDP and
// accepts TCP.
func (in *Internet) Coturn(secret string) *Proc {
	t := in.Lab.t
	t.Helper()
	dir := t.TempDir()
	conf := strings.Join([]string{
		fmt.Sprintf("listening-port=%d", CoturnPort),
		"listening-ip=" + ServerIP,
		"relay-ip=" + ServerIP,
		"min-port=50000",
		"max-port=50999",
		"use-auth-secret",
		"static-auth-secret=" + secret,
		"realm=ferry",
		"fingerprint",
		"no-cli",
		"no-tls",
		"no-dtls",
		"no-multicast-peers",
		"verbose",
		"userdb=" + filepath.Join(dir, "turndb"),
		"pidfile=" + filepath.Join(dir, "turnserver.pid"),
		"log-file=stdout",
		"simple-log",
	}, "\n") + "\n"
	cf := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := in.Pub.Start("coturn", Env(dir), "turnserver", "-c", cf)
	addr := fmt.Sprintf("%s:%d", ServerIP, CoturnPort)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Pub.WaitSTUN(ctx, addr); err != nil {
		t.Fatalf("netlab: coturn does not answer STUN: %v\n%s", err, p.Describe())
	}
	return p
}

// WaitSTUN waits until a STUN server answers a Binding request on UDP and
// accepts TCP connections at addr, as seen from namespace n.
func (n *NS) WaitSTUN(ctx context.Context, addr string) error {
	for {
		err := n.stunOnce(addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond): // retry a probe, bounded by ctx
		}
	}
}

func (n *NS) stunOnce(addr string) error {
	var conn net.Conn
	var tcp net.Conn
	err := n.Do(func() error {
		var err error
		if conn, err = net.Dial("udp4", addr); err != nil {
			return err
		}
		tcp, err = net.DialTimeout("tcp4", addr, time.Second)
		return err
	})
	if conn != nil {
		defer conn.Close()
	}
	if err != nil {
		return err
	}
	tcp.Close()
	// A STUN Binding request (RFC 5389 §6): type, length 0, magic cookie,
	// transaction id; the success response has type 0x0101 and the same id.
	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:], 0x0001)
	binary.BigEndian.PutUint32(req[4:], 0x2112A442)
	_, _ = rand.Read(req[8:20])
	if _, err := conn.Write(req); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1500)
	k, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if k < 20 || binary.BigEndian.Uint16(buf) != 0x0101 || !bytes.Equal(buf[8:20], req[8:20]) {
		return errors.New("unexpected STUN response")
	}
	return nil
}

// Uclient is what coturn's turnutils_uclient measured.
type Uclient struct {
	SentBytes, RecvBytes int64
	// Seconds is its "total transmit time" (whole seconds).
	Seconds int
	// Lost is the number of lost packets and LossPercent their share.
	Lost        int
	LossPercent float64
	// RTT and jitter in milliseconds: average, min, max.
	RTTAvg, RTTMin, RTTMax          float64
	JitterAvg, JitterMin, JitterMax float64
}

// MBps is what arrived per second of transmit time, in MB (10^6 bytes).
func (u Uclient) MBps() float64 {
	if u.Seconds == 0 {
		return 0
	}
	return float64(u.RecvBytes) / 1e6 / float64(u.Seconds)
}

func (u Uclient) String() string {
	return fmt.Sprintf("sent %d B, received %d B in %d s (%.2f MB/s), lost %d packets (%.2f%%), rtt avg %.2f ms (min %.0f, max %.0f), jitter avg %.2f ms (max %.0f)",
		u.SentBytes, u.RecvBytes, u.Seconds, u.MBps(), u.Lost, u.LossPercent, u.RTTAvg, u.RTTMin, u.RTTMax, u.JitterAvg, u.JitterMax)
}

// ErrUclientOutput means turnutils_uclient's summary could not be read:
// it failed before measuring anything.
var ErrUclientOutput = errors.New("netlab: no turnutils_uclient summary")

var (
	reBytes  = regexp.MustCompile(`tot_send_bytes ~ (\d+), tot_recv_bytes ~ (\d+)`)
	reTime   = regexp.MustCompile(`Total transmit time is (\d+)`)
	reLost   = regexp.MustCompile(`Total lost packets (\d+) \(([\d.]+)%\)`)
	reRTT    = regexp.MustCompile(`Average round trip delay ([\d.]+) ms; min = ([\d.]+) ms, max = ([\d.]+) ms`)
	reJitter = regexp.MustCompile(`Average jitter ([\d.]+) ms; min = ([\d.]+) ms, max = ([\d.]+) ms`)
)

// ParseUclient reads the summary turnutils_uclient prints at the end.
func ParseUclient(out string) (Uclient, error) {
	var u Uclient
	last := func(re *regexp.Regexp) []string {
		m := re.FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			return nil
		}
		return m[len(m)-1]
	}
	i := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	b, tm, l, r, j := last(reBytes), last(reTime), last(reLost), last(reRTT), last(reJitter)
	if b == nil || tm == nil || l == nil || r == nil || j == nil {
		return u, ErrUclientOutput
	}
	u.SentBytes, u.RecvBytes, u.Seconds = i(b[1]), i(b[2]), int(i(tm[1]))
	u.Lost, u.LossPercent = int(i(l[1])), f(l[2])
	u.RTTAvg, u.RTTMin, u.RTTMax = f(r[1]), f(r[2]), f(r[3])
	u.JitterAvg, u.JitterMin, u.JitterMax = f(j[1]), f(j[2]), f(j[3])
	return u, nil
}
