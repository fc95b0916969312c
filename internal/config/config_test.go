package config_test

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/config"
)

func parse(t *testing.T, args []string, env map[string]string) (config.Serve, error) {
	t.Helper()
	c := config.DefaultServe()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Flags(fs)
	err := config.Parse(fs, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return c, err
}

func TestPrecedence(t *testing.T) {
	env := map[string]string{"FERRY_ADDR": ":9000", "FERRY_TICKET_TTL": "2h", "FERRY_TURN_ALLOW_PRIVATE": "true"}
	c, err := parse(t, []string{"--addr", ":7000"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" {
		t.Errorf("flag must beat env: addr %s", c.Addr)
	}
	if c.TicketTTL.Hours() != 2 || !c.TURN.AllowPrivate {
		t.Errorf("env not applied: %+v", c)
	}
	if c.TURN.Listen != ":3478" || c.CreateLimit != 30 {
		t.Errorf("defaults lost: %+v", c)
	}
	if _, err := parse(t, nil, map[string]string{"FERRY_TICKET_TTL": "soon"}); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "FERRY_TICKET_TTL") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1500": 1500, "64KiB": 64 << 10, "10MB": 10e6, "2GiB": 2 << 30, "1.5 GB": 1.5e9, "3tib": 3 << 40} {
		var b config.Bytes
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Bytes(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "ten", "5XB"} {
		var b config.Bytes
		if err := b.Set(in); err == nil {
			t.Errorf("Bytes(%q) accepted", in)
		}
	}
	if s := config.FormatBytes(3 << 30); s != "3GiB" {
		t.Errorf("FormatBytes = %s", s)
	}
}

func TestPortRange(t *testing.T) {
	var p config.PortRange
	if err := p.Set("49152-65535"); err != nil || p.Min != 49152 || p.Max != 65535 || p.String() != "49152-65535" {
		t.Fatalf("%v %+v", err, p)
	}
	for _, in := range []string{"1", "5-4", "0-10", "a-b", "1-70000"} {
		if err := p.Set(in); err == nil {
			t.Errorf("PortRange(%q) accepted", in)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // substring of the error, "" for valid
	}{
		{"defaults", nil, ""},
		{"bad addr", []string{"--addr", "nope"}, "--addr"},
		{"public url", []string{"--public-url", "ferry.example"}, "--public-url"},
		{"tls half", []string{"--tls-cert", "c.pem"}, "--tls-cert"},
		{"ttl", []string{"--ticket-ttl", "0s"}, "--ticket-ttl"},
		{"read timeout", []string{"--read-timeout", "0s"}, "--read-timeout"},
		{"idle timeout", []string{"--idle-timeout", "-1s"}, "--idle-timeout"},
		{"log level", []string{"--log-level", "loud"}, "--log-level"},
		{"proxies", []string{"--trusted-proxies", "10.0.0.0/8,nonsense"}, "--trusted-proxies"},
		{"relay ip", []string{"--turn-relay-ip", "host"}, "--turn-relay-ip"},
		{"relay ip v6", []string{"--turn-relay-ip", "2001:db8::1"}, "--turn-relay-ip \"2001:db8::1\": the relay's address must be IPv4"},
		{"relay ip v4", []string{"--turn-relay-ip", "203.0.113.7"}, ""},
		{"relay bind v6", []string{"--turn-relay-bind", "::"}, "--turn-relay-bind"},
		{"turn url scheme", []string{"--turn-url", "http://x", "--turn-secret", "0123456789abcdef"}, "--turn-url"},
		{"turn url needs secret", []string{"--turn-url", "turn:x:3478"}, "--turn-secret"},
		{"redis", []string{"--redis", "localhost:6379"}, "--redis"},
		{"oidc needs client", []string{"--oidc-issuer", "https://id.example"}, "--oidc-client-id"},
		{"short cookie secret", []string{"--cookie-secret", "short"}, "--cookie-secret"},
		{"short admin token", []string{"--admin-token", "123456789012345"}, "--admin-token must be at least 16 characters"},
		{"admin token", []string{"--admin-token", "1234567890123456"}, ""},
		{"short turn secret", []string{"--turn-secret", "s3cret"}, "--turn-secret must be at least 16 characters"},
		{"short turn secret for external TURN", []string{"--turn-listen", "", "--turn-url", "turn:x:3478", "--turn-secret", "s3cret"}, "--turn-secret must be at least 16 characters"},
		{"turn secret", []string{"--turn-secret", "1234567890123456"}, ""},
		{"create-from", []string{"--allow-create-from", "10.0.0.1"}, "--allow-create-from"},
		{"no turn is fine", []string{"--turn-listen", ""}, ""},
		{"ip quota", []string{"--turn-ip-quota", "-1"}, "--turn-ip-quota"},
		{"max allocations", []string{"--turn-max-allocations", "-5"}, "--turn-max-allocations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, tc.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %s", err, tc.want)
			}
		})
	}
}

// TestTURNGlobalCap: the cap on allocations in all never exceeds the relay
// port range, so a full range is refused and counted as capacity.
func TestTURNGlobalCap(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 1000},
		{[]string{"--turn-ports", "49152-49171"}, 20},
		{[]string{"--turn-ports", "49152-49171", "--turn-max-allocations", "8"}, 8},
		{[]string{"--turn-ports", "49152-49171", "--turn-max-allocations", "0"}, 20},
		{[]string{"--turn-max-allocations", "0"}, 0},
	} {
		c, err := parse(t, tc.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.TURN.GlobalCap(); got != tc.want || c.Validate() != nil {
			t.Errorf("%v: cap %d, want %d (%v)", tc.args, got, tc.want, c.Validate())
		}
	}
}

// TestTURNAddressCap: one client address never holds more than half the
// relay, so three links from one place cannot take a small port range.
func TestTURNAddressCap(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 32},
		{[]string{"--turn-ports", "49152-49171"}, 10},
		{[]string{"--turn-ports", "49152-49152"}, 1},
		{[]string{"--turn-ip-quota", "4", "--turn-ports", "49152-49171"}, 4},
		{[]string{"--turn-ip-quota", "0", "--turn-ports", "49152-49171"}, 0},
		{[]string{"--turn-max-allocations", "0", "--turn-ip-quota", "500"}, 500},
	} {
		c, err := parse(t, tc.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.TURN.AddressCap(); got != tc.want {
			t.Errorf("%v: cap %d, want %d", tc.args, got, tc.want)
		}
	}
}

// TestTURNAdvice: caps below what a relayed browser transfer takes (two
// generations of striped connections) are accepted but explained.
func TestTURNAdvice(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"--turn-quota", "0", "--turn-ip-quota", "0"}, nil},
		{[]string{"--turn-quota", "28", "--turn-ip-quota", "28"}, nil},
		{[]string{"--turn-quota", "16"}, []string{"--turn-quota 16 is below 28"}},
		{[]string{"--turn-ip-quota", "20"}, []string{"capped at 20 "}},
		{[]string{"--turn-max-allocations", "40"}, []string{"capped at 20 "}},
		{[]string{"--turn-quota", "4", "--turn-ports", "49152-49171"}, []string{"--turn-quota 4 ", "in all are capped at 20 ", "per client address are capped at 10 "}},
		{[]string{"--turn-ip-quota", "0", "--turn-ports", "49152-49161"}, []string{"in all are capped at 10 "}},
	} {
		c, err := parse(t, tc.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := c.TURN.Advice()
		if len(got) != len(tc.want) {
			t.Errorf("%v: advice %q, want %d lines", tc.args, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%v: advice %q, want %q in it", tc.args, got[i], w)
			}
		}
	}
}

func TestValidateStandalone(t *testing.T) {
	for _, tc := range []struct {
		secret, relayIP, want string
	}{
		{"", "", "--turn-secret is required"},
		{"short", "", "--turn-secret must be at least 16 characters"},
		{"0123456789abcdef", "", ""},
		{"0123456789abcdef", "2001:db8::1", "the relay's address must be IPv4"},
	} {
		turn := config.DefaultServe().TURN
		turn.Secret, turn.RelayIP = tc.secret, tc.relayIP
		err := turn.ValidateStandalone()
		if tc.want == "" {
			if err != nil {
				t.Errorf("secret %q refused: %v", tc.secret, err)
			}
			continue
		}
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("secret %q: %v, want an error about %s", tc.secret, err, tc.want)
		}
	}
}
