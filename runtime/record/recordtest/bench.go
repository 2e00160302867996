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
