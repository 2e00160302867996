package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/record/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "rec.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// chain creates a session and n sealed events for it.
func chain(t *testing.T, s *sqlite.Store, id string, n int) []record.Event {
	t.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sess := record.Session{ID: id, Identity: "bot", Resource: "orders-db", StartedAt: at}
	if err := s.CreateSession(t.Context(), &sess); err != nil {
		t.Fatal(err)
	}
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = record.Event{Time: at.Add(time.Duration(i+1) * time.Millisecond), Kind: record.KindCommand,
			Protocol: "postgres", Command: fmt.Sprintf("SELECT %d", i), Effect: "allow"}
	}
	if err := record.SealChain(&sess, evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestAppendChunks covers batches around the rows-per-statement size: each
// is stored completely and in order, a retried batch is accepted, and a
// conflict in any chunk fails the whole batch.
func TestAppendChunks(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 31, 32, 33, 64, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			ctx := t.Context()
			id := fmt.Sprintf("chunks-%d", n)
			evs := chain(t, s, id, n+1)
			if err := s.AppendEvents(ctx, evs[:n]); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendEvents(ctx, evs[:n]); err != nil {
				t.Fatalf("retried batch: %v", err)
			}
			forked := evs[n-1]
			forked.Hash = "fork"
			batch := append(append([]record.Event(nil), evs[n:]...), evs[:n-1]...)
			batch = append(batch, forked)
			if err := s.AppendEvents(ctx, batch); !errors.Is(err, record.ErrConflict) {
				t.Fatalf("batch with a forked event: got %v, want ErrConflict", err)
			}
			got, err := s.Events(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("stored %d events, want %d (the failed batch must store nothing)", len(got), n)
			}
			for i := range got {
				if got[i].Seq != int64(i+1) || got[i].Hash != evs[i].Hash {
					t.Fatalf("event %d: seq %d hash %s, want seq %d hash %s", i, got[i].Seq, got[i].Hash, i+1, evs[i].Hash)
				}
			}
			if res, err := record.Verify(ctx, s, id); err != nil || res.Err() != nil {
				t.Fatalf("verify: %v %v", err, res.Err())
			}
		})
	}
}

// TestAppendSessionDeletedElsewhere deletes a session the store has already
// written events for behind its back: the next append must report
// ErrNotFound, not store anything and not fail with a constraint error.
func TestAppendSessionDeletedElsewhere(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	evs := chain(t, s, "gone", 2)
	if err := s.AppendEvents(ctx, evs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `DELETE FROM sessions WHERE id = 'gone'`); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, evs[1:]); !errors.Is(err, record.ErrNotFound) {
		t.Fatalf("append to a deleted session: got %v, want ErrNotFound", err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM events WHERE session_id = 'gone'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d events left for the deleted session", n)
	}
}
