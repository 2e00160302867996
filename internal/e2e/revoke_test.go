package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// TestRevocationReachesOpenSessions: a bundle activation re-resolves open
// sessions. Leaving a group takes the group's grants away from the next
// command; leaving the policy ends the session with the reason, recorded.
func TestRevocationReachesOpenSessions(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := g.connect(t, ctx, "claude-coder", nil)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatalf("granted read: %v", err)
	}

	// claude-coder leaves coding-agents: its grants come from that group.
	g.activate(t, ctx, func(b *bundle.Bundle) {
		p := &b.Policy
		for i := range p.Identities {
			if p.Identities[i].Name == "claude-coder" {
				p.Identities[i].Groups = slices.DeleteFunc(p.Identities[i].Groups, func(s string) bool { return s == "coding-agents" })
			}
		}
		for i := range p.Groups {
			p.Groups[i].Members = slices.DeleteFunc(p.Groups[i].Members, func(s string) bool { return s == "claude-coder" })
		}
	})
	err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("read after leaving the group: got %v, want a policy denial", err)
	}

	// claude-coder leaves the policy: the open session ends at once.
	g.activate(t, ctx, func(b *bundle.Bundle) {
		p := &b.Policy
		p.Identities = slices.DeleteFunc(p.Identities, func(id bundle.Identity) bool { return id.Name == "claude-coder" })
		for i := range p.Groups {
			p.Groups[i].Members = slices.DeleteFunc(p.Groups[i].Members, func(s string) bool { return s == "claude-coder" })
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol)
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("the session of an identity removed from the policy still answers")
	}
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, "no longer exists") {
		t.Logf("client error after removal: %v (the FATAL may have arrived before the query)", err)
	}
	g.stop()
	_, sessions := g.recordedSessions(t, ctx)
	found := false
	for _, s := range sessions {
		if s.Identity == "claude-coder" {
			found = true
			if s.EndedAt.IsZero() || !strings.Contains(s.EndReason, "identity claude-coder no longer exists") {
				t.Fatalf("recorded end: %s %q; want the removal as reason", s.EndedAt, s.EndReason)
			}
		}
	}
	if !found {
		t.Fatal("no recorded session of claude-coder")
	}
}

// TestSessionEndsWithItsToken: a session lives no longer than its token.
func TestSessionEndsWithItsToken(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := g.connConfig(t, "claude-coder")
	var id bundle.Identity
	for _, i := range g.srv.Activator().Engine().Bundle().Policy.Identities {
		if i.Name == "claude-coder" {
			id = i
		}
	}
	tok, err := g.srv.DevIssuer().Issue(id, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = tok
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var last error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, last = conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); last != nil {
			break
		}
	}
	if last == nil {
		t.Fatal("the session outlived its token")
	}
	var pe *pgconn.PgError
	if errors.As(last, &pe) && pe.Code != "28000" {
		t.Errorf("client saw %s %s; want 28000 when the token expired", pe.Code, pe.Message)
	}
	g.stop()
	_, sessions := g.recordedSessions(t, ctx)
	if !strings.Contains(sessions[0].EndReason, "token expired") {
		t.Fatalf("recorded end reason %q; want the token's expiry", sessions[0].EndReason)
	}
}
