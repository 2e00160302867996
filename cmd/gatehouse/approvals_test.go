package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/compiler"
	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/server"
)

// TestApprovalsCLI resolves a pending approval through the admin API with
// `gatehouse approvals list` and `approve`, as a DBA of the example policy.
func TestApprovalsCLI(t *testing.T) {
	dir := t.TempDir()
	src, err := compiler.LoadDir("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(src, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Bundle
	now := time.Now().UTC().Truncate(time.Second)
	b.Manifest.NotBefore, b.Manifest.Expires = now.Add(-time.Hour), now.Add(time.Hour)
	raw, err := bundle.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(bundlePath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := server.Defaults()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Bundle.Source = bundlePath
	cfg.Bundle.AllowUnsigned = true
	cfg.Admin.Listen = freeAddr(t)
	cfg.Postgres.Listen = ""
	srv, err := server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done; srv.Close() }()
	for !srv.Activator().Ready() {
		time.Sleep(20 * time.Millisecond)
	}

	a, err := srv.Approvals().Create(context.Background(), approval.Request{
		Identity: "ci-deployer", Resource: "orders-db", Command: "ALTER TABLE orders ADD COLUMN x int",
		RuleID: "ci-migrations-need-approval", Group: "dba", Count: 1, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string) string {
		for _, id := range b.Policy.Identities {
			if id.Name == name {
				tok, err := srv.DevIssuer().Issue(id, 5*time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
		}
		t.Fatalf("no identity %s", name)
		return ""
	}
	server := "http://" + cfg.Admin.Listen
	alice := issue("alice")

	out, _, code, err := run(t, "approvals", "list", "--server", server, "--token", alice)
	if code != 0 || !strings.Contains(out, a.ID) || !strings.Contains(out, "ci-migrations-need-approval") {
		t.Fatalf("list: code %d err %v\n%s", code, err, out)
	}
	if _, _, code, _ := run(t, "approvals", "approve", a.ID, "--server", server, "--token", alice); code != exitUsage {
		t.Fatalf("approve without reason: exit %d, want %d", code, exitUsage)
	}
	// carol is not a DBA: refused by the gateway.
	if _, _, code, err := run(t, "approvals", "approve", a.ID, "--server", server, "--token", issue("carol"), "--reason", "ok"); code == 0 || !strings.Contains(err.Error(), "403") {
		t.Fatalf("approve by a non-member: exit %d err %v", code, err)
	}
	out, _, code, err = run(t, "approvals", "approve", a.ID, "--server", server, "--token", alice, "--reason", "additive column")
	if code != 0 || !strings.Contains(out, "approved") {
		t.Fatalf("approve: code %d err %v out %s", code, err, out)
	}
	got, err := srv.Approvals().Get(context.Background(), a.ID)
	if err != nil || got.Status != "approved" || len(got.Votes) != 1 || got.Votes[0].Approver != "alice" || got.Votes[0].Reason != "additive column" {
		t.Fatalf("approval after the CLI vote: %+v %v", got, err)
	}
}
