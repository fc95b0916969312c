package netlab

import (
	"slices"
	"testing"
	"time"
)

func TestParseUclient(t *testing.T) {
	out := `0: : IPv4. Received relay addr: 198.18.0.1:50983
4: : start_mclient: msz=4, tot_send_msgs=20, tot_recv_msgs=20, tot_send_bytes ~ 20000, tot_recv_bytes ~ 20000
6: : start_mclient: tot_send_bytes ~ 80000, tot_recv_bytes ~ 79000
6: : Total transmit time is 6
6: : Total lost packets 1 (1.250000%), total send dropped 0 (0.000000%)
6: : Average round trip delay 2.500000 ms; min = 0 ms, max = 36 ms
6: : Average jitter 0.325000 ms; min = 0 ms, max = 1 ms
`
	u, err := ParseUclient(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Uclient{SentBytes: 80000, RecvBytes: 79000, Seconds: 6, Lost: 1, LossPercent: 1.25,
		RTTAvg: 2.5, RTTMin: 0, RTTMax: 36, JitterAvg: 0.325, JitterMin: 0, JitterMax: 1}
	if u != want {
		t.Fatalf("got %+v\nwant %+v", u, want)
	}
	if _, err := ParseUclient("0: : channel bind: error 401 ()\n"); err == nil {
		t.Fatal("a failed run parsed")
	}
}

func TestParseCounters(t *testing.T) {
	// iptables-nft prints protocol numbers.
	out := `Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
    pkts      bytes target     prot opt in     out     source               destination
       0        0 DROP       0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate INVALID
      10     1000 ACCEPT     6    --  wan    lan     0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED
      20     2000 ACCEPT     17   --  wan    lan     0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED
       1       99 DROP       0    --  wan    *       0.0.0.0/0            0.0.0.0/0
       3      300 DROP       17   --  lan    *       0.0.0.0/0            0.0.0.0/0
      40     4000 ACCEPT     tcp  --  lan    wan     0.0.0.0/0            0.0.0.0/0
      50     5000 ACCEPT     udp  --  lan    wan     0.0.0.0/0            0.0.0.0/0
`
	got := parseCounters(out)
	want := Counters{OutTCP: 4000, OutUDP: 5000, InTCP: 1000, InUDP: 2000, UDPDropped: 300}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestCreator(t *testing.T) {
	for name, want := range map[string]int{
		"ferrylab-1234-a1b2c3-pub": 1234, "ferrylab-x-pub": 0, "other-1234-pub": 0, "ferrylab-": 0,
	} {
		if got, _ := creator(name); got != want {
			t.Errorf("creator(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestParsePing(t *testing.T) {
	out := `PING 198.18.2.2 (198.18.2.2) 56(84) bytes of data.

--- 198.18.2.2 ping statistics ---
1000 packets transmitted, 975 received, 2.5% packet loss, time 8023ms
rtt min/avg/max/mdev = 29.433/30.887/33.835/0.516 ms, pipe 5
`
	p, err := ParsePing(out)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 1000 || p.Received != 975 || p.Min != 29433*time.Microsecond || p.Avg != 30887*time.Microsecond || p.Max != 33835*time.Microsecond {
		t.Fatalf("%+v", p)
	}
	if l := p.Loss(); l < 0.0249 || l > 0.0251 {
		t.Fatalf("loss %v", l)
	}
	if _, err := ParsePing("ping: connect: Network is unreachable\n"); err == nil {
		t.Fatal("no summary parsed")
	}
}

func TestParseQueueDrops(t *testing.T) {
	out := "    0  10619     3 1     0     7     2  1454408  1\n    1  10619     0 1     0     0     1    47442  1\n"
	if n := parseQueueDrops(out); n != 10 {
		t.Fatalf("%d", n)
	}
}

func TestUnsettledLinks(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      []string
	}{
		{"settled", `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 8e:e3:43:47:2a:77 brd ff:ff:ff:ff:ff:ff link-netns tR
`, nil},
		{"carrier not yet reported", `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0@if2: <NO-CARRIER,BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state DOWN mode DEFAULT group default qlen 1000\    link/ether 8e:e3:43:47:2a:77 brd ff:ff:ff:ff:ff:ff link-netns tR
3: wan: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state LOWERLAYERDOWN mode DEFAULT group default qlen 1000\    link/ether 8e:e3:43:47:2a:78 brd ff:ff:ff:ff:ff:ff
`, []string{"eth0", "wan"}},
		{"set down on purpose", `2: wan@if7: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN mode DEFAULT group default qlen 1000\    link/ether 8e:e3:43:47:2a:77 brd ff:ff:ff:ff:ff:ff link-netns tR
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unsettledLinks(tc.out); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
