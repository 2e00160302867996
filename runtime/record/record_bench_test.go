package record

import (
	"encoding/json"
	"testing"
)

// BenchmarkRecorderRecord measures the hot path: sequence, hash chain and
// enqueue, with the writer draining into a store that accepts everything.
func BenchmarkRecorderRecord(b *testing.B) {
	r, err := New(Config{Store: nopStore{}, QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(b.Context()) }()
	sr, err := r.StartSession(b.Context(), &Session{Identity: "bot", Resource: "orders-db"})
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Protocol: "postgres", Command: "SELECT id, email FROM customers WHERE id = $1",
		Facts:  json.RawMessage(`{"kind":"select","tables":["customers"],"columns":["id","email"],"has_where":true}`),
		Effect: "allow", RuleIDs: []string{"read-customers"}, BundleRevision: "0123456789abcdef", DurationMicros: 420, Rows: 1}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e := ev
		e.RuleIDs = []string{"read-customers"}
		for sr.Record(e) != nil {
			// queue momentarily full: the writer is draining
		}
	}
	b.StopTimer()
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	<-done
}

func BenchmarkEventHash(b *testing.B) {
	ev := Event{SessionID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Seq: 42, Kind: "command", Command: "SELECT 1",
		Facts: json.RawMessage(`{"kind":"select"}`), Effect: "allow", RuleIDs: []string{"r"}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		_, buf = EventHash(buf, "0000000000000000000000000000000000000000000000000000000000000000", &ev)
	}
}
