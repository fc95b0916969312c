package main

import (
	"context"

	"github.com/ferrydev/ferry/internal/config"
	"github.com/ferrydev/ferry/internal/server"
	"github.com/ferrydev/ferry/signaling"
)

func runServe(ctx context.Context, args []string, io stdio) error {
	cfg := config.DefaultServe()
	fs := newFlagSet("serve", "[flags]", io)
	cfg.Flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger(io.err, cfg.LogLevel, cfg.LogFormat)
	if cfg.Redis != "" {
		signaling.SetRedisLogger(log)
	}
	srv, err := server.New(cfg, server.Options{Logger: log, Version: version})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
