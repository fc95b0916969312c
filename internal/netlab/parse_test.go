package netlab

import "testing"

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
