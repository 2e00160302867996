package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/bundle/fetch"
)

// TestWithClock runs a gateway at an instant long past: a bundle valid only
// around it activates, tokens minted and verified at it are accepted, and
// status and approvals carry its time. On the wall clock the bundle and the
// token would both have expired.
func TestWithClock(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	b := adminBundle(t)
	b.Manifest.NotBefore, b.Manifest.Expires = at.Add(-time.Hour), at.Add(time.Hour)
	raw, err := bundle.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Defaults()
	cfg.StateDir = dir
	cfg.Bundle.Source = filepath.Join(dir, "unused.bundle.json")
	cfg.Bundle.AllowUnsigned = true
	cfg.Admin.Listen, cfg.Postgres.Listen = "", ""
	cfg.Recording.Store = "sqlite:" + filepath.Join(dir, "rec.db")
	ctx := context.Background()
	srv, err := New(ctx, cfg, nil, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Activator().Handle(ctx, fetch.Fetched{Data: raw, ETag: "t"}); err != nil {
		t.Fatalf("a bundle valid at the server's clock was rejected: %v", err)
	}
	if _, err := srv.verifier.Verify(ctx, token(t, srv, "alice")); err != nil {
		t.Errorf("a token minted at the server's clock was rejected: %v", err)
	}
	if got := srv.status().Time; !got.Equal(at) {
		t.Errorf("status time %s, want %s", got, at)
	}
	a, err := srv.Approvals().Create(ctx, approval.Request{Identity: "agent-a", Group: "dba", Count: 1, Timeout: time.Minute})
	if err != nil || !a.CreatedAt.Equal(at) {
		t.Errorf("approval created at %s (%v), want %s", a.CreatedAt, err, at)
	}
}
