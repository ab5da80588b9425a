package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/logbuf"
	"github.com/junctionhq/junction/internal/platform/logline"
	"github.com/junctionhq/junction/internal/platform/server"
)

func serveCmd() *cobra.Command {
	var cfgPath, addr, dataDir string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Junction server",
		Long: `Run the Junction server.

With no --config it starts on embedded defaults: it listens on ` + config.DefaultAddr + `,
keeps its state in ./.junction, and configures providers from OPENAI_API_KEY and
OPENAI_BASE_URL, ANTHROPIC_API_KEY, and AWS_REGION (with the AWS credential chain).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *config.Config
			var err error
			if cfgPath != "" {
				cfg, err = config.Load(cfgPath, os.Getenv, server.ConfigChecks()...)
				if err != nil {
					return err
				}
			} else {
				cfg = config.Default(os.Getenv)
			}
			if addr != "" {
				cfg.Server.Addr = addr
			}
			if dataDir != "" {
				cfg.Server.DataDir = dataDir
			}
			if err := cfg.Validate(server.ConfigChecks()...); err != nil {
				return err
			}
			log, closeLog, err := newLogger(cfg)
			if err != nil {
				return err
			}
			defer closeLog()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			// Serve closes what the server opened on its way out; this
			// closes it when Serve is never reached (Listen failed).
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
				defer cancel()
				srv.Close(sctx)
			}()
			if err := srv.Listen(); err != nil {
				return err
			}
			out := cmd.ErrOrStderr()
			if srv.GeneratedAdminKey != "" {
				fmt.Fprintf(out, "\nGenerated an admin key. It is shown only this once; store it now:\n\n    %s\n\n", srv.GeneratedAdminKey)
				fmt.Fprintf(out, "Use it as JUNCTION_ADMIN_KEY for the CLI, or set auth.admin_key in the config.\n\n")
			}
			log.Info("junction listening", "addr", srv.Addr(), "data_dir", cfg.Server.DataDir, "providers", len(cfg.Providers))
			return srv.Serve(ctx)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "YAML config file (with ${ENV} expansion)")
	cmd.Flags().StringVar(&addr, "addr", "", "listen address, overriding the config (host:port)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory, overriding the config")
	return cmd
}

// newLogger builds the JSON (or text) logger writing to stderr and to the
// log file in the data directory.
func newLogger(cfg *config.Config) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, nil, err
	}
	var w io.Writer = os.Stderr
	var file *os.File
	if cfg.Log.File != "" {
		path := cfg.Log.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(cfg.Server.DataDir, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, err
		}
		file = f
		w = io.MultiWriter(os.Stderr, f)
	}
	// One write per batch of lines, not one or two per request.
	buf := logbuf.New(w, 100*time.Millisecond)
	w = buf
	closeFn := func() {
		buf.Close()
		if file != nil {
			file.Close()
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), closeFn, nil
	}
	return slog.New(logline.NewJSONHandler(w, opts)), closeFn, nil
}
