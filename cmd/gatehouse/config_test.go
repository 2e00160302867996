package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadServerConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	err := os.WriteFile(path, []byte(`
bundle:
  source: /srv/bundle.json
  keys: [a.pub, b.pub]
  threshold: 2
recording:
  retention: 90d
postgres:
  listen: 127.0.0.1:7000
resources:
  orders-db: {address: 10.0.0.5:5432, credential: "env:ORDERS_PW"}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEHOUSE_LOG_FORMAT", "json")
	t.Setenv("GATEHOUSE_BUNDLE_POLL_INTERVAL", "5s")
	cfg, err := loadServerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bundle.Source != "/srv/bundle.json" || cfg.Bundle.Threshold != 2 || len(cfg.Bundle.Keys) != 2 {
		t.Errorf("bundle: %+v", cfg.Bundle)
	}
	if cfg.Recording.Retention != 90*24*time.Hour {
		t.Errorf("retention %v", cfg.Recording.Retention)
	}
	if cfg.Log.Format != "json" || cfg.Bundle.PollInterval != 5*time.Second {
		t.Errorf("environment not applied: log %+v poll %v", cfg.Log, cfg.Bundle.PollInterval)
	}
	if cfg.Postgres.Listen != "127.0.0.1:7000" || cfg.Admin.Listen != "127.0.0.1:8081" {
		t.Errorf("listeners: %+v %+v", cfg.Postgres, cfg.Admin)
	}
	if o := cfg.Resources["orders-db"]; o.Address != "10.0.0.5:5432" || o.Credential != "env:ORDERS_PW" {
		t.Errorf("resource override: %+v", o)
	}
	if !cfg.Recording.FailClosed || cfg.Identity.Audience != "gatehouse" {
		t.Errorf("defaults lost: %+v %+v", cfg.Recording, cfg.Identity)
	}
}

func TestLoadServerConfigRejectsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(path, []byte("bundle:\n  sauce: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadServerConfig(path)
	if err == nil || !strings.Contains(err.Error(), "sauce") {
		t.Fatalf("unknown key: err = %v", err)
	}
}
