package recordtest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
)

// BenchmarkAppend appends sealed events in batches of batchSize and reports
// events per second. Each iteration writes one batch.
func BenchmarkAppend(b *testing.B, s record.Store, batchSize int) {
	ctx := b.Context()
	sess := &record.Session{ID: record.NewID(time.Now()), Identity: "bench", Resource: "orders-db",
		StartedAt: record.Timestamp(time.Now())}
	if err := s.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	tmpl := record.Event{Kind: record.KindCommand, Protocol: "postgres",
		Command: "SELECT id, email FROM customers WHERE id = $1",
		Facts:   json.RawMessage(`{"kind":"select","tables":["customers"],"has_where":true}`),
		Effect:  "allow", RuleIDs: []string{"read-customers"}, BundleRevision: "rev", DurationMicros: 300, Rows: 1}
	seq := int64(0)
	batch := make([]record.Event, batchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i := range batch {
			seq++
			e := tmpl
			e.SessionID, e.Seq, e.Time = sess.ID, seq, record.Timestamp(time.Now())
			e.Hash = fmt.Sprintf("%064x", seq)
			batch[i] = e
		}
		b.StartTimer()
		if err := s.AppendEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendGateway appends batches shaped like a busy gateway's:
// sessions concurrent sessions whose events interleave within each batch,
// with the content of a recorded pgbench statement (a distinct literal per
// command, facts, two rule ids, a bundle revision, chained hashes). It
// reports events per second and the CPU time per event is ns/op divided by
// batchSize.
func BenchmarkAppendGateway(b *testing.B, s record.Store, sessions, batchSize int) {
	ctx := b.Context()
	ids := make([]string, sessions)
	seqs := make([]int64, sessions)
	prev := make([]string, sessions)
	for i := range ids {
		sess := &record.Session{ID: record.NewID(time.Now()), Identity: "bench-agent", Resource: "bench-db",
			StartedAt: record.Timestamp(time.Now())}
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
		ids[i] = sess.ID
	}
	tmpl := record.Event{Kind: record.KindCommand, Protocol: "postgres",
		Facts:          json.RawMessage(`{"kind":"select","tables_read":["pgbench_accounts"],"columns":["pgbench_accounts.abalance","pgbench_accounts.aid"]}`),
		Effect:         "allow",
		RuleIDs:        []string{"bench-agent-pgbench", "mask-pgbench-filler"},
		BundleRevision: "dir:sha256:cb8a3f686668a032103361f07916c305342757eb6802215f7a3598071cadaa2c",
		Reason:         `allowed by rule "bench-agent-pgbench"`, Masked: true, DurationMicros: 346, Rows: 1}
	batch := make([]record.Event, batchSize)
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i := range batch {
			k := n % sessions
			n++
			seqs[k]++
			e := tmpl
			e.SessionID, e.Seq, e.Time = ids[k], seqs[k], record.Timestamp(time.Now())
			e.Command = fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d", n*7919%1000000)
			e.PrevHash = prev[k]
			e.Hash = fmt.Sprintf("%064x", n)
			prev[k] = e.Hash
			batch[i] = e
		}
		b.StartTimer()
		if err := s.AppendEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "events/s")
}
