package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// generateCorpus builds a corpus of n statements in sessions of 200, with
// about distinct different texts, from the identities and tables of the
// example policy, recorded during business hours.
func generateCorpus(n, distinct int) *Corpus {
	rng := rand.New(rand.NewPCG(1, 2))
	templates := []string{
		"SELECT id, amount, status FROM orders WHERE customer_id = %d",
		"SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id = %d",
		"SELECT id, name, email FROM customers WHERE id = %d",
		"UPDATE orders SET status = 'shipped' WHERE id = %d",
		"DELETE FROM orders WHERE id = %d",
		"SELECT count(*) FROM orders WHERE amount > %d",
		"SELECT table_name FROM information_schema.tables LIMIT %d",
		"ALTER TABLE orders ADD COLUMN c%d text",
	}
	texts := make([]string, distinct)
	for i := range texts {
		texts[i] = fmt.Sprintf(templates[i%len(templates)], i)
	}
	who := []struct{ id, group string }{{"claude-coder", "coding-agents"}, {"copilot-agent", "coding-agents"}, {"ci-deployer", ""}, {"erin", "auditors"}}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // Tuesday, business hours in Berlin
	c := &Corpus{Header: Header{Format: Format}}
	for len(c.Sessions)*200 < n {
		w := who[len(c.Sessions)%len(who)]
		s := Session{ID: fmt.Sprintf("s%d", len(c.Sessions)), Identity: w.id, Resource: "orders-db", ResourceType: "postgres", StartedAt: start}
		if w.group != "" {
			s.Groups = []string{w.group}
		}
		for j := 0; j < 200; j++ {
			s.Events = append(s.Events, Event{Seq: int64(j + 1), Time: start.Add(time.Duration(j) * time.Second), Protocol: "postgres",
				Command: texts[rng.IntN(distinct)], Decision: Recorded{Effect: bundle.EffectAllow}})
		}
		c.Sessions = append(c.Sessions, s)
	}
	return c
}

// BenchmarkReplay replays a generated corpus of 200,000 statements (2,000
// distinct texts) under a base and a head policy and reports recorded
// statements replayed per minute: "unchanged" changes one description,
// "revoke" removes the agents' read grant (a third of the statements
// change, each building a change record).
func BenchmarkReplay(b *testing.B) {
	const n = 200_000
	c := generateCorpus(n, 2000)
	base := currentPolicy(b)
	recordUnder(b, c, base)
	heads := []struct {
		name string
		head *Policy
	}{
		{"unchanged", variant(b, "reworded", func(p *bundle.Policy) { ruleByID(p, "agents-read-orders").Description = "x" })},
		{"revoke", variant(b, "revoke", removeRule("agents-read-orders"))},
	}
	for _, h := range heads {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := Replay(context.Background(), c, base, h.head, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Minutes(), "statements/min")
		})
	}
}

// recordUnder sets every event's recorded decision to p's, as if the
// corpus had been recorded under p.
func recordUnder(b *testing.B, c *Corpus, p *Policy) {
	r := newReplayer(nil, p, nil, nil)
	pg, err := sqlclass.NewPostgres(sqlclass.PostgresConfig{})
	if err != nil {
		b.Fatal(err)
	}
	cache := map[string]*classified{}
	for i := range c.Sessions {
		s := &c.Sessions[i]
		groups, _ := r.head.principal(s.Identity, nil, false)
		st := proxy.NewSQLState()
		for j := range s.Events {
			e := &s.Events[j]
			cl, ok := cache[e.Command]
			if !ok {
				cl = classify(pg, e.Command)
				cache[e.Command] = cl
			}
			r.head.decideSQL(s.Identity, groups, s.Resource, e.Time, cl, st)
			d := r.head.decision(false)
			e.Decision = Recorded{Effect: d.Effect, RuleIDs: d.RuleIDs, Masked: d.Masked}
		}
	}
}
