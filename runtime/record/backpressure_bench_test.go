package record_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/recordtest"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

// BenchmarkSessionQueueSQLite measures how the per-session cap bounds
// throughput into a real SQLite store: each session reserves in one
// goroutine and records in another (a pipelining client), as fast as it
// can, so the store is the bottleneck. It reports events per second and
// the share of Reserve calls that waited for the session's own cap.
func BenchmarkSessionQueueSQLite(b *testing.B) {
	for _, sessions := range []int{1, 10} {
		for _, sq := range []int{64, 256, 512, 1024, 4096} {
			b.Run(fmt.Sprintf("sessions=%d/session_queue=%d", sessions, sq), func(b *testing.B) {
				benchSessionQueue(b, sessions, sq, nil)
			})
		}
	}
}

// BenchmarkSignedRecordingSQLite compares recording into SQLite without
// and with the gateway's signatures (seals at session ends, a checkpoint
// every 10000 events as by default): ten pipelining sessions of b.N/10
// events each.
func BenchmarkSignedRecordingSQLite(b *testing.B) {
	b.Run("unsigned", func(b *testing.B) { benchSessionQueue(b, 10, record.DefaultSessionQueue, nil) })
	b.Run("signed", func(b *testing.B) {
		benchSessionQueue(b, 10, record.DefaultSessionQueue, func(c *record.Config) {
			c.Signer, c.GatewayID, c.CheckpointInterval = recordtest.Key(b, 1), "gw-bench", -1
		})
	})
}

func benchSessionQueue(b *testing.B, sessions, sq int, mod func(*record.Config)) {
	st, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "rec.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := record.Config{Store: st, SessionQueue: sq, QueueSize: max(10000, sq)}
	if mod != nil {
		mod(&cfg)
	}
	r, err := record.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	waits := map[string]int{}
	r.SetTestHook(func(ev, _ string) {
		mu.Lock()
		waits[ev]++
		mu.Unlock()
	})
	done := make(chan error, 1)
	go func() { done <- r.Run(b.Context()) }()
	ctx := b.Context()
	per := max(b.N/sessions, 1)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			sr, err := r.StartSession(ctx, &record.Session{Identity: fmt.Sprintf("s%d", i), Resource: "orders-db"})
			if err != nil {
				b.Error(err)
				return
			}
			reserved := make(chan *record.Reservation, sq)
			go func() {
				defer close(reserved)
				for range per {
					res, err := sr.Reserve(ctx, 1)
					if err != nil {
						b.Error(err)
						return
					}
					reserved <- res
				}
			}()
			for res := range reserved {
				if err := res.Record(record.Event{Command: "SELECT id, email FROM customers WHERE id = $1",
					Effect: "allow", RuleIDs: []string{"read-customers"}, Rows: 1}); err != nil {
					b.Error(err)
				}
			}
			if err := sr.End("done"); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	if err := r.Close(); err != nil { // includes writing the tail
		b.Fatal(err)
	}
	b.StopTimer()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	total := float64(per * sessions)
	b.ReportMetric(total/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(waits["wait-session"])/total, "session-waits/event")
}
