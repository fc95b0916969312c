package clientip_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/clientip"
)

func TestClientIP(t *testing.T) {
	r, err := clientip.New([]string{"10.0.0.0/8", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "203.0.113.5:1234", "", "203.0.113.5"},
		{"untrusted peer ignores header", "203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},
		{"trusted proxy", "10.1.2.3:80", "198.51.100.7", "198.51.100.7"},
		{"spoofed left part", "10.1.2.3:80", "6.6.6.6, 198.51.100.7", "198.51.100.7"},
		{"chain of proxies", "10.1.2.3:80", "198.51.100.7, 10.9.9.9", "198.51.100.7"},
		{"single trusted address", "192.168.1.1:80", "198.51.100.8", "198.51.100.8"},
		// A garbled hop never makes the client the trusted proxy itself.
		{"garbage hop", "10.1.2.3:80", "198.51.100.7, garbage", "invalid IP"},
		{"unknown hop", "10.1.2.3:80", "unknown", "invalid IP"},
		{"empty hop", "10.1.2.3:80", "198.51.100.7, ", "invalid IP"},
		{"empty header", "10.1.2.3:80", " ", "invalid IP"},
		{"garbage behind a proxy hop", "10.1.2.3:80", "garbage, 10.9.9.9", "invalid IP"},
		{"garbage left of the client", "10.1.2.3:80", "garbage, 198.51.100.7", "198.51.100.7"},
		{"hostname hop", "10.1.2.3:80", "proxy.internal", "invalid IP"},
		{"port without address", "10.1.2.3:80", ":80", "invalid IP"},
		{"v4 with port", "10.1.2.3:80", "198.51.100.7:4711", "198.51.100.7"},
		{"v6 with port", "10.1.2.3:80", "[2001:db8::7]:443", "2001:db8::7"},
		{"trusted hop with port", "10.1.2.3:80", "198.51.100.7, 10.9.9.9:80", "198.51.100.7"},
		{"v6 zone", "10.1.2.3:80", "fe80::1%eth0", "fe80::1"},
		{"v4-mapped hop", "10.1.2.3:80", "::ffff:198.51.100.7", "198.51.100.7"},
		{"two headers", "10.1.2.3:80", "6.6.6.6\x00198.51.100.7", "198.51.100.7"},
		{"only proxies", "10.1.2.3:80", "10.0.0.1", "10.0.0.1"},
		{"v4-mapped", "[::ffff:203.0.113.9]:1", "", "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for h := range strings.SplitSeq(tc.xff, "\x00") {
				if h != "" {
					req.Header.Add("X-Forwarded-For", h)
				}
			}
			if got := r.ClientIP(req).String(); got != tc.want {
				t.Fatalf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := clientip.New([]string{"not-an-ip"}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}
