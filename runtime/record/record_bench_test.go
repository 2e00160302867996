package record

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchEvent is a gateway-shaped command event.
var benchEvent = Event{Protocol: "postgres", Command: "SELECT id, email FROM customers WHERE id = $1",
	Facts:  json.RawMessage(`{"kind":"select","tables":["customers"],"columns":["id","email"],"has_where":true}`),
	Effect: "allow", RuleIDs: []string{"read-customers"}, BundleRevision: "0123456789abcdef", DurationMicros: 420, Rows: 1}

// benchRecorder runs a recorder over a store that accepts everything, so
// that the benchmarks measure the recorder's own cost.
func benchRecorder(b *testing.B, cfg Config) (*SessionRecorder, func()) {
	b.Helper()
	if cfg.Signer != nil {
		cfg.Store = nopEvidenceStore{}
	} else {
		cfg.Store = nopStore{}
	}
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(b.Context()) }()
	sr, err := r.StartSession(b.Context(), &Session{Identity: "bot", Resource: "orders-db"})
	if err != nil {
		b.Fatal(err)
	}
	return sr, func() {
		b.StopTimer()
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecorderRecord measures the non-blocking path: sequence, hash
// chain and enqueue, with the writer draining into a store that accepts
// everything.
func BenchmarkRecorderRecord(b *testing.B) {
	sr, stop := benchRecorder(b, Config{QueueSize: 1 << 16})
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for b.Loop() {
		e := benchEvent
		e.RuleIDs = []string{"read-customers"}
		for sr.Record(e) != nil {
			// queue momentarily full: the writer is draining
		}
	}
	cpu.report(b)
}

// BenchmarkRecorderReserveRecord measures what the gateway does per
// command: Reserve(1) before forwarding, Reservation.Record when the
// outcome arrives. The session runs ahead of the writer up to its cap and
// then waits for it, as a pipelining client does.
func BenchmarkRecorderReserveRecord(b *testing.B) {
	for _, sq := range []int{DefaultSessionQueue, 1 << 16} {
		b.Run(fmt.Sprintf("session_queue=%d", sq), func(b *testing.B) {
			sr, stop := benchRecorder(b, Config{QueueSize: 1 << 16, SessionQueue: sq})
			defer stop()
			ctx := b.Context()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			defer cpu.report(b)
			for b.Loop() {
				res, err := sr.Reserve(ctx, 1)
				if err != nil {
					b.Fatal(err)
				}
				e := benchEvent
				e.RuleIDs = []string{"read-customers"}
				if err := res.Record(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecorderReserveRecordSigned is BenchmarkRecorderReserveRecord
// (default session queue) with a signing recorder: the writer notes each
// session's head per batch and a checkpoint is signed every 10000 events
// (the default), so its cost is included, amortised as in production.
func BenchmarkRecorderReserveRecordSigned(b *testing.B) {
	sr, stop := benchRecorder(b, Config{QueueSize: 1 << 16, Signer: goldenKey(b, 1), GatewayID: "gw-bench",
		CheckpointInterval: -1})
	defer stop()
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		res, err := sr.Reserve(ctx, 1)
		if err != nil {
			b.Fatal(err)
		}
		e := benchEvent
		e.RuleIDs = []string{"read-customers"}
		if err := res.Record(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionSeal measures what a session's end costs on top of its
// end event: the seal's encoding and Ed25519 signature.
func BenchmarkSessionSeal(b *testing.B) {
	key := goldenKey(b, 1)
	seal := Seal{SessionID: "01JABCDEFGHJKMNPQRSTVWXYZ0", HeaderHash: strings.Repeat("a", 64), LastSeq: 42,
		LastHash: strings.Repeat("b", 64), EndedAt: time.Now(), EndReason: "client closed"}
	b.ReportAllocs()
	for b.Loop() {
		if err := SignSeal(&seal, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckpointSign measures encoding, hashing and signing a
// checkpoint over n sessions.
func BenchmarkCheckpointSign(b *testing.B) {
	key := goldenKey(b, 1)
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			c := Checkpoint{GatewayID: "gw", Seq: 7, Time: time.Now(), PrevHash: strings.Repeat("c", 64)}
			for i := range n {
				c.Entries = append(c.Entries, CheckpointEntry{SessionID: fmt.Sprintf("01JABCDEFGHJKMNPQRST%06d", i),
					LastSeq: int64(i), LastHash: strings.Repeat("d", 64)})
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := SignCheckpoint(&c, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecorderReserveRecordParallel runs one session per goroutine.
func BenchmarkRecorderReserveRecordParallel(b *testing.B) {
	r, err := New(Config{Store: nopStore{}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(b.Context()) }()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		sr, err := r.StartSession(b.Context(), &Session{Identity: "bot", Resource: "orders-db"})
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			res, err := sr.Reserve(b.Context(), 1)
			if err != nil {
				b.Error(err)
				return
			}
			e := benchEvent
			e.RuleIDs = []string{"read-customers"}
			if err := res.Record(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu.report(b)
	b.StopTimer()
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
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
