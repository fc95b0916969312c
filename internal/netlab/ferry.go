package netlab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Ports of the lab's ferry server on ServerIP.
const (
	HTTPPort = 8080
	TURNPort = 3478
)

// ErrPeer is a ferry peer that reported an error event.
var ErrPeer = errors.New("netlab: ferry peer failed")

// Build compiles the ferry command into dir and returns the binary's path.
// It runs from within the module, so any package directory will do.
func Build(dir string) (string, error) {
	return goBuild(dir, "ferry", "github.com/ferrydev/ferry/cmd/ferry")
}

// BuildEmulator compiles the path emulator (package pathemu's command)
// into dir and returns the binary's path.
func BuildEmulator(dir string) (string, error) {
	return goBuild(dir, "pathemu", "github.com/ferrydev/ferry/internal/netlab/pathemu/cmd/pathemu")
}

func goBuild(dir, name, pkg string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", name, err, out)
	}
	return bin, nil
}

// Env is the environment lab processes get: nothing from the test's own
// environment (no stray FERRY_* variable changes a flag behind our back).
func Env(home string, extra ...string) []string {
	return append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "TMPDIR=" + home}, extra...)
}

// Server is a `ferry serve` in the public namespace.
type Server struct {
	*Proc
	// URL is the base URL peers use, Secret the TURN REST secret.
	URL    string
	Secret string
}

// Serve starts `ferry serve` on ServerIP (HTTP on HTTPPort, the bundled
// TURN on TURNPort unless args set --turn-listen) with a known TURN secret
// and waits until it listens. args come last and so override the defaults.
func (in *Internet) Serve(bin string, args ...string) *Server {
	in.Lab.t.Helper()
	return serve(in.Pub, ServerIP, nil, bin, args...)
}

// serve starts `ferry serve` on ip in namespace ns; env is added to its
// environment.
func serve(ns *NS, ip string, env []string, bin string, args ...string) *Server {
	t := ns.lab.t
	t.Helper()
	secret := randomHex(16)
	argv := []string{bin, "serve",
		"--addr", fmt.Sprintf("%s:%d", ip, HTTPPort),
		"--turn-listen", fmt.Sprintf("%s:%d", ip, TURNPort),
		"--turn-relay-ip", ip,
		"--turn-secret", secret,
		"--log-level", "debug",
	}
	for i, a := range args {
		if a == "--turn-secret" && i+1 < len(args) {
			secret = args[i+1] // the caller's wins, as on the command line
		}
	}
	argv = append(argv, args...)
	p := ns.Start("ferry serve", Env(t.TempDir(), env...), argv...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The listeners are bound before this line is logged.
	if _, _, err := p.Stderr.Wait(ctx, 0, func(s string) bool { return strings.Contains(s, `msg="ferry serving"`) }); err != nil {
		t.Fatalf("netlab: ferry serve did not start: %v\n%s", err, p.Describe())
	}
	return &Server{Proc: p, URL: fmt.Sprintf("http://%s:%d", ip, HTTPPort), Secret: secret}
}

// Event is one --json line of `ferry send` or `ferry receive`.
type Event struct {
	Event       string    `json:"event"`
	Time        time.Time `json:"time"`
	Link        string    `json:"link"`
	Path        string    `json:"path"`
	Transport   string    `json:"transport"`
	Generation  int       `json:"generation"`
	Reason      string    `json:"reason"`
	Message     string    `json:"message"`
	Done        int64     `json:"done"`
	Total       int64     `json:"total"`
	Resumed     int64     `json:"resumed"`
	Bytes       int64     `json:"bytes"`
	Sent        int64     `json:"sent"`
	Files       int       `json:"files"`
	Generations int       `json:"generations"`
	Roots       []string  `json:"roots"`
	Seconds     float64   `json:"seconds"`
}

// ParseEvent parses one line of --json output.
func ParseEvent(line string) (Event, bool) {
	var e Event
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil || e.Event == "" {
		return Event{}, false
	}
	return e, true
}

// Events returns the events a peer printed so far.
func Events(p *Proc) []Event {
	var out []Event
	for _, l := range p.Stdout.All() {
		if e, ok := ParseEvent(l); ok {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvent waits for the peer's next event of kind that match (nil: any)
// accepts, searching stdout from line from; it returns the event and the
// line after it. An error event, or the peer exiting, fails the wait.
func WaitEvent(ctx context.Context, p *Proc, from int, kind string, match func(Event) bool) (Event, int, error) {
	var got Event
	_, i, err := p.Stdout.Wait(ctx, from, func(line string) bool {
		e, ok := ParseEvent(line)
		if !ok {
			return false
		}
		if e.Event == "error" || e.Event == kind && (match == nil || match(e)) {
			got = e
			return true
		}
		return false
	})
	if err != nil {
		return Event{}, i, fmt.Errorf("waiting for %q from %s: %w\n%s", kind, p.Name, err, p.Describe())
	}
	if got.Event == "error" && kind != "error" {
		return got, i + 1, fmt.Errorf("%w: %s: %s\n%s", ErrPeer, p.Name, got.Message, p.Describe())
	}
	return got, i + 1, nil
}

// RandomFile writes size random bytes to dir/name and returns the path and
// the SHA-256.
func RandomFile(dir, name string, size int64) (string, [32]byte, error) {
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		return "", [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return "", [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return p, sum, f.Close()
}

// FileSum is the SHA-256 of a file.
func FileSum(p string) ([32]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
