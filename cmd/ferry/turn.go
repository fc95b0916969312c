package main

import (
	"context"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/turn"
)

// runTurn runs a standalone relay that accepts credentials from any ferry
// server configured with the same --turn-secret (and --turn-url pointing here).
func runTurn(ctx context.Context, args []string, io stdio) error {
	t := config.DefaultServe().TURN
	var logLevel string
	fs := newFlagSet("turn", "[flags]", io)
	t.TURNFlags(fs)
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := t.ValidateStandalone(); err != nil {
		return err
	}
	log := newLogger(io.err, logLevel, "text")
	for _, a := range t.Advice() {
		log.Warn(a)
	}
	ts, err := turn.New(turn.Config{
		ListenAddr: t.Listen, RelayIP: server.RelayIP(t.RelayIP, t.RelayBind), RelayBind: t.RelayBind,
		MinPort: t.Ports.Min, MaxPort: t.Ports.Max, Secret: t.Secret, AllowPrivate: t.AllowPrivate,
		QuotaPerTicket: t.Quota, QuotaPerAddress: t.AddressCap(), MaxAllocations: t.GlobalCap(),
		Bandwidth: int64(t.Bandwidth), Logger: log,
		// No Alive: a standalone relay knows no links. An allocation ends
		// when its client stops refreshing it, at the latest one TURN
		// lifetime after its credentials expire; the caps bound the rest.
	})
	if err != nil {
		return err
	}
	log.Info("ferry turn serving", "listen", t.Listen, "port", ts.Port())
	return ts.Run(ctx)
}
