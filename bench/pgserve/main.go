package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // benchmark helper; bound to the -pprof address only
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
	"github.com/gatehouse/gatehouse/runtime/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
}

func run() error {
	policyDir := flag.String("policy", "bench/policy", "policy directory")
	stateDir := flag.String("state", "", "state directory (required)")
	listen := flag.String("listen", "127.0.0.1:0", "PostgreSQL listen address")
	resource := flag.String("resource", "bench-db", "policy resource to override")
	backend := flag.String("backend", "127.0.0.1:5432", "backend address")
	database := flag.String("database", "", "backend database (default: the policy's)")
	user := flag.String("user", "", "backend user (default: the policy's)")
	identityName := flag.String("identity", "bench-agent", "identity to issue a token for")
	tokenOut := flag.String("token-out", "", "file to write the token to")
	addrOut := flag.String("addr-out", "", "file to write the listen address to, once serving")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address")
	flag.Parse()
	if *stateDir == "" {
		return errors.New("-state is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	src, err := compiler.LoadDir(*policyDir)
	if err != nil {
		return err
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		return err
	}
	b := res.Bundle
	now := time.Now().UTC().Truncate(time.Second)
	b.Manifest.Serial = uint64(now.Unix())
	b.Manifest.NotBefore = now.Add(-time.Hour)
	b.Manifest.Expires = now.Add(24 * time.Hour)
	raw, err := bundle.Encode(b)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		return err
	}
	// The bundle file gets a directory of its own: the file source watches
	// the file's directory, and the recording database's writes in the
	// state directory would wake the watcher on every commit.
	bundlePath := filepath.Join(*stateDir, "bundle-source", "bench.bundle.json")
	if err := os.MkdirAll(filepath.Dir(bundlePath), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(bundlePath, raw, 0o600); err != nil {
		return err
	}

	cfg := server.Defaults()
	cfg.StateDir = *stateDir
	cfg.Bundle.Source = bundlePath
	cfg.Bundle.AllowUnsigned = true
	cfg.Bundle.PollInterval = time.Hour
	cfg.Admin.Listen = ""
	cfg.Postgres.Listen = *listen
	cfg.Recording.Store = "sqlite:" + filepath.Join(*stateDir, "gatehouse.db")
	cfg.Resources = map[string]server.ResourceConfig{*resource: {Address: *backend, Database: *database, User: *user}}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Activator().Handle(ctx, fetch.Fetched{Data: raw, ETag: "bench"}); err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	if *tokenOut != "" {
		var tok string
		for _, id := range b.Policy.Identities {
			if id.Name == *identityName {
				tok, err = srv.DevIssuer().Issue(id, 12*time.Hour)
				if err != nil {
					return err
				}
			}
		}
		if tok == "" {
			return fmt.Errorf("no identity %q", *identityName)
		}
		if err := os.WriteFile(*tokenOut, []byte(tok), 0o600); err != nil {
			return err
		}
	}
	if *pprofAddr != "" {
		go func() {
			srv := &http.Server{Addr: *pprofAddr, ReadHeaderTimeout: 10 * time.Second}
			if err := srv.ListenAndServe(); err != nil {
				fmt.Fprintln(os.Stderr, "pprof:", err)
			}
		}()
	}
	if *addrOut != "" {
		if err := os.WriteFile(*addrOut, []byte(srv.PostgresAddr().String()), 0o600); err != nil {
			return err
		}
	}
	err = srv.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
