package review_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
	"github.com/gatehouse/gatehouse/runtime/review"
)

// BenchmarkBuild reviews one agent with 20 sessions of 100 commands each
// in a SQLite store (reads, chain verification and aggregation).
func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "r.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	facts := json.RawMessage(`{"kind":"select","tables_read":["public.orders"]}`)
	for s := range 20 {
		at := start.Add(time.Duration(s) * time.Hour)
		sess := record.Session{ID: record.NewID(at), Identity: "bot", IdentityKind: "agent", Resource: "db",
			ResourceType: "postgres", StartedAt: at}
		evs := make([]record.Event, 100)
		for i := range evs {
			evs[i] = record.Event{Time: at.Add(time.Duration(i) * time.Second), Kind: record.KindCommand, Protocol: "postgres",
				Command: "SELECT * FROM orders", Facts: facts, Effect: "allow", RuleIDs: []string{"read"}}
		}
		if err := record.SealChain(&sess, evs); err != nil {
			b.Fatal(err)
		}
		if err := st.CreateSession(ctx, &sess); err != nil {
			b.Fatal(err)
		}
		if err := st.AppendEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	pol := &bundle.Policy{
		Identities: []bundle.Identity{{Name: "bot", Kind: "agent"}},
		Resources:  []bundle.Resource{{Name: "db", Type: bundle.ResourcePostgres}},
		Rules: []bundle.Rule{
			{ID: "read", Subjects: []string{"bot"}, ResolvedResources: []string{"db"}, Effect: bundle.EffectAllow},
			{ID: "write", Subjects: []string{"bot"}, ResolvedResources: []string{"db"}, Effect: bundle.EffectAllow},
		},
	}
	cfg := review.Config{Reader: st, Policy: pol, Now: start.Add(30 * 24 * time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		rep, err := review.Build(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Identities[0].Grants[0].Uses != 2000 {
			b.Fatalf("uses = %d", rep.Identities[0].Grants[0].Uses)
		}
	}
}
