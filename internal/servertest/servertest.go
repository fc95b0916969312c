// Package servertest starts a real `ferry serve` in-process for tests, on
// loopback with ephemeral ports, and stops it when the test ends.
package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/server"
)

// Config is the default configuration moved to 127.0.0.1: HTTP and the
// bundled TURN relay on free ports, relays bound to loopback.
func Config() config.Serve {
	cfg := config.DefaultServe()
	cfg.Addr, cfg.TURN.Listen, cfg.TURN.RelayBind = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	return cfg
}

// Start runs a server with cfg until the test ends; a Run error fails it.
func Start(t testing.TB, cfg config.Serve, o server.Options) *server.Server {
	t.Helper()
	if cfg.Store.Dir == config.DefaultDataDir() {
		cfg.Store.Dir = t.TempDir() // never the user's own stored transfers
	}
	srv, err := server.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	// Ready once signaling delivers messages (it serves HTTP only then).
	select {
	case <-srv.Signaling().Ready():
	case err := <-done:
		t.Fatalf("server stopped at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not become ready")
	}
	return srv
}
